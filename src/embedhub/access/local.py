"""The knowledge base in this process, on the embedded store. The collection's model loads on the
first search or add and stays loaded; each call opens the collections it needs and closes them
after (documents another process wrote are seen at the next call), one call at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from embedhub.access.contract import CALLER, DocumentNotFoundError, SearchContext
from embedhub.accounts.guard import CollectionGuard
from embedhub.accounts.roles import Need
from embedhub.config import Settings
from embedhub.kb.ask import AskOptions, answer_events, collect, gather_evidence
from embedhub.kb.chat import ChatSettings
from embedhub.kb.chunking import chunk_kind
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.files import gather_files
from embedhub.kb.folders import OUTSIDE_BY_SYMLINK, check_folder, is_within
from embedhub.kb.search import Searcher

#: told what loaded and how long it took: ("model" | "reranker", its name, seconds)
OnLoad = Callable[[str, str, float], None]


def chunk_view(row) -> dict:
    """A stored chunk as the HTTP API's document detail shows it."""
    return {
        "id": row.id,
        "index": row.chunk_index,
        "text": row.text,
        "page_start": row.page_start,
        "page_end": row.page_end,
        "heading_path": list(row.heading_path),
        "char_start": row.char_start,
        "char_end": row.char_end,
        "kind": chunk_kind(row.text),
    }


class LocalKnowledgeBase:
    via = "in-process"

    def __init__(
        self, settings: Settings, reranker: str | None = None, on_load: OnLoad | None = None
    ) -> None:
        self.settings = settings
        self.reranker_folder = reranker
        self.on_load = on_load
        self._reranker = None
        self._encoders: dict[str, Any] = {}
        self._lock = threading.RLock()

    @contextmanager
    def _opened(self) -> Iterator[Any]:
        with self._lock:
            knowledge_base = KnowledgeBase(self.settings)
            try:
                yield knowledge_base
            finally:
                knowledge_base.close()

    def _encoder(self, collection) -> Any:
        reference = collection.config.model_reference
        if reference not in self._encoders:
            from embedhub.models.backends import load_encoder  # torch and transformers: on first use

            started = time.perf_counter()
            self._encoders[reference] = load_encoder(reference, self.settings)
            self._loaded("model", collection.config.model, started)
        encoder = self._encoders[reference]
        collection.check_encoder(encoder)
        return encoder

    def _loaded_reranker(self) -> Any:
        if self.reranker_folder is None:
            return None
        if self._reranker is None:
            from embedhub.models.reranker import load_reranker  # torch: on first use

            started = time.perf_counter()
            self._reranker = load_reranker(self.reranker_folder, self.settings)
            self._loaded("reranker", self._reranker.name, started)
        return self._reranker

    def _loaded(self, what: str, name: str, started: float) -> None:
        if self.on_load is not None:
            self.on_load(what, name, time.perf_counter() - started)

    def _collection(self, knowledge_base, name: str, need: Need = Need.VIEW):
        """The collection, through the access rule when a user calls (accounts on)."""
        caller = CALLER.get()
        if caller is None:
            return knowledge_base.get(name)
        return CollectionGuard(knowledge_base, caller.store).open(caller.principal, name, need)[0]

    def _record(self, knowledge_base, action: str, name: str, detail: str) -> None:
        caller = CALLER.get()
        if caller is not None:
            caller.store.record(caller.principal.label, action, name, detail, caller.principal.address)

    def collection_names(self) -> list[str]:
        if CALLER.get() is not None:
            return [row["name"] for row in self.collections()]
        return KnowledgeBase(self.settings).names()

    def collections(self) -> list[dict]:
        with self._opened() as knowledge_base:
            caller = CALLER.get()
            if caller is None:
                return [knowledge_base.get(name).info() for name in knowledge_base.names()]
            visible = CollectionGuard(knowledge_base, caller.store).visible(caller.principal)
            return [collection.info() for collection, _ in visible]

    @contextmanager
    def searcher(
        self, name: str, *, rerank: bool = False, needs_model: bool = True
    ) -> Iterator[SearchContext]:
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name)
            encoder = self._encoder(collection) if needs_model else None
            reranker = self._loaded_reranker() if rerank else None
            yield SearchContext(Searcher(collection, encoder, reranker), collection, encoder)

    def ask(self, name: str, options: AskOptions, *, rerank: bool) -> dict:
        """embedhub.kb.ask in this process, with the chat endpoint of this process's settings
        (reranked when `rerank` and this process has a reranker)."""
        with self.searcher(name, rerank=rerank, needs_model=options.mode != "lexical") as context:
            retrieval = gather_evidence(context.searcher, options)
        chat = ChatSettings.from_settings(self.settings)
        return collect(answer_events(options, retrieval, chat=chat)).to_dict()

    def documents(self, name: str) -> list[dict]:
        with self._opened() as knowledge_base:
            return [asdict(record) for record in self._collection(knowledge_base, name).manifest.documents()]

    def document(self, name: str, doc_id: str) -> dict:
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name)
            record = collection.manifest.get(doc_id)
            if record is None:
                raise DocumentNotFoundError(f"no document {doc_id!r} in collection {name!r}")
            rows = collection.store.rows_of(doc_id)
            chunks = [chunk_view(row) for row in rows if row.generation == record.generation]
            return {**asdict(record), "chunks": chunks}

    def add(self, name: str, path: Path, glob: str | None) -> dict:
        from embedhub.kb.ingest import Ingestor  # the parsers: only when adding

        # the same folder rule as the HTTP API's: any folder when only this machine can reach the
        # tools (stdio, a loopback bind), the listed roots otherwise
        roots = check_folder(self.settings, path, str(path))
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name, Need.EDIT)
            encoder = self._encoder(collection)
            files, unsupported = gather_files([path], glob)
            refused = {file for file in files if roots is not None and not is_within(file, roots)}
            allowed = [file for file in files if file not in refused]
            summary = Ingestor(collection, encoder).ingest(allowed).summary()
            self._record(knowledge_base, "add_folder", name, f"{path} ({len(allowed)} files)")
        return {
            **{key: summary[key] for key in ("added", "updated", "skipped", "failed", "chunks", "failures")},
            "unsupported": len(unsupported),
            "refused": [{"path": str(file), "error": OUTSIDE_BY_SYMLINK} for file in sorted(refused)],
        }

    def delete(self, name: str, doc_ids: list[str]) -> None:
        from embedhub.kb.ingest import remove_documents
        from embedhub.kb.uploads import remove_uploaded_copy

        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name, Need.EDIT)
            records = [collection.manifest.get(doc_id) for doc_id in doc_ids]
            remove_documents(collection, doc_ids)
            for record in records:
                if record is not None:
                    remove_uploaded_copy(collection, record.path)
                    self._record(knowledge_base, "delete", name, record.path)
