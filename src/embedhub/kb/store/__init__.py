"""Store registry keyed by name."""

from __future__ import annotations

from pathlib import Path

from embedhub.errors import InvalidInputError
from embedhub.kb.store.base import ChunkRow, Hit, SearchFilter, Store

STORES = {"lancedb": "embedhub.kb.store.lance:LanceStore"}

__all__ = ["STORES", "ChunkRow", "Hit", "SearchFilter", "Store", "open_store"]


def open_store(name: str, folder: Path, dimensions: int) -> Store:
    if name not in STORES:
        raise InvalidInputError(f"unknown store {name!r}; choose one of: {', '.join(STORES)}")
    module_name, class_name = STORES[name].split(":")
    import importlib

    return getattr(importlib.import_module(module_name), class_name)(folder, dimensions)
