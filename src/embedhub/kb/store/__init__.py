"""Store registry keyed by name: `lancedb` (embedded, the default) and `milvus` (Milvus Lite in
the collection folder, or a Milvus server or cluster at a URI)."""

from __future__ import annotations

import importlib
from pathlib import Path

from embedhub.errors import InvalidInputError
from embedhub.kb.store.base import ChunkRow, Hit, SearchFilter, Store, VectorIndexOptions

STORES = {
    "lancedb": "embedhub.kb.store.lance:LanceStore",
    "milvus": "embedhub.kb.store.milvus:MilvusStore",
}
#: stores that live elsewhere than the collection folder, so take a URI (and a token)
REMOTE_STORES = {"milvus"}

__all__ = [
    "REMOTE_STORES",
    "STORES",
    "ChunkRow",
    "Hit",
    "SearchFilter",
    "Store",
    "VectorIndexOptions",
    "check_store",
    "open_store",
]


def check_store(name: str, uri: str | None = None) -> None:
    """Refuse an unknown store, or a URI for a store that has none, before anything is created."""
    if name not in STORES:
        raise InvalidInputError(f"unknown store {name!r}; choose one of: {', '.join(STORES)}")
    if uri is not None and name not in REMOTE_STORES:
        raise InvalidInputError(
            f"the {name} store lives in the collection folder and takes no URI; "
            f"drop --uri, or choose a store that has one: {', '.join(sorted(REMOTE_STORES))}"
        )


def open_store(
    name: str,
    folder: Path,
    dimensions: int,
    uri: str | None = None,
    token: str | None = None,
    index_options: VectorIndexOptions | None = None,
) -> Store:
    check_store(name, uri)
    module_name, class_name = STORES[name].split(":")
    store_class = getattr(importlib.import_module(module_name), class_name)
    if name in REMOTE_STORES:
        store = store_class(folder, dimensions, uri=uri, token=token)
    else:
        store = store_class(folder, dimensions)
    if index_options is not None:
        store.index_options = index_options
    return store
