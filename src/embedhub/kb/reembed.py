"""Re-embedding a collection with another model (or other dimensions): explicit and resumable.

The new vectors go into a second store folder beside the live one, document by document; search
keeps using the old index meanwhile. Only when every committed document is in the new store does
collection.json switch to it (one atomic file replace), and the old store is deleted. An
interrupted run leaves a marker; running the command again with the same target continues where
it stopped (documents already in the new store are skipped).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from embedhub.engine.cache import embed_through_cache
from embedhub.errors import EmbedhubError
from embedhub.kb.chunking import embedding_text
from embedhub.kb.collection import Collection, KnowledgeBase
from embedhub.models.base import Encoder, finish

MARKER = "reembed.json"


@dataclass
class ReembedReport:
    documents: int
    reused: int
    embedded_chunks: int
    store_folder: str


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-")[:60]


def reembed(
    knowledge_base: KnowledgeBase,
    name: str,
    encoder: Encoder,
    *,
    model_reference: str,
    dimensions: int | None = None,
    instruction: str | None = None,
    on_document: Callable[[int, int], None] | None = None,
) -> ReembedReport:
    collection: Collection = knowledge_base.get(name)
    size = encoder.spec.check_dimensions(dimensions)
    folder_name = f"store-{_slug(encoder.spec.name)}-{size}"
    if folder_name == collection.config.store_folder:
        raise EmbedhubError(f"collection {name!r} already uses {encoder.spec.name} at {size} dimensions")
    marker_path = collection.folder / MARKER
    target = {"model": encoder.spec.name, "dimensions": size, "store_folder": folder_name}
    if marker_path.exists():
        previous = json.loads(marker_path.read_text())
        if previous != target:
            stale = collection.folder / previous["store_folder"]
            if stale.exists():  # a different target was abandoned (a server store keeps it too)
                abandoned = collection.open_store(previous["store_folder"], previous["dimensions"])
                abandoned.destroy()
                abandoned.close()
            shutil.rmtree(stale, ignore_errors=True)
    marker_path.write_text(json.dumps(target))
    new_store = collection.open_store(folder_name, size)
    records = [r for r in collection.manifest.documents() if r.generation is not None]
    reused = embedded = 0
    for position, record in enumerate(records, start=1):
        if new_store.rows_of(record.doc_id):
            reused += 1
        else:
            rows = [r for r in collection.store.rows_of(record.doc_id) if r.generation == record.generation]
            if rows:
                texts = [
                    embedding_text(r.text, r.heading_path) for r in rows
                ]  # the same text the original ingest embedded
                inputs = encoder.tokenize(texts, kind="document", truncate=True)
                raw, computed = embed_through_cache(encoder, inputs, collection.cache)
                embedded += computed
                vectors = finish(raw, size, True)
                new_store.add(rows, vectors)
        if on_document is not None:
            on_document(position, len(records))
    new_store.ensure_vector_index()  # before the switch: searches never meet a big store unindexed
    # every document is in the new store: switch atomically, then remove the old index
    config = collection.config
    old_folder = collection.folder / config.store_folder
    config.model = encoder.spec.name
    config.model_reference = model_reference
    config.dimensions = size
    config.native_dimensions = encoder.native_dims
    if instruction is not None:
        config.instruction = instruction
    elif encoder.spec.supports_instructions:
        config.instruction = config.instruction or encoder.spec.default_instruction()
    else:
        config.instruction = None
    config.store_folder = folder_name
    knowledge_base.save_config(collection)
    collection.store.destroy()
    collection.store.close()
    collection.store = new_store
    shutil.rmtree(old_folder, ignore_errors=True)
    marker_path.unlink(missing_ok=True)
    return ReembedReport(len(records), reused, embedded, folder_name)
