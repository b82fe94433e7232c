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

from embedhub.access.contract import (
    CALLER,
    AddOptions,
    CreateOptions,
    DocumentNotFoundError,
    FailureNotFoundError,
    SearchContext,
)
from embedhub.accounts.guard import CollectionGuard
from embedhub.accounts.policy import Principal
from embedhub.accounts.roles import Need, PrincipalKind, Role
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
#: whoever runs a tool on this machine with no caller of its own reads the home folder: an admin
THIS_MACHINE = Principal(PrincipalKind.CLI, None, Role.ADMIN)


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

    def info(self, name: str) -> dict:
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name)
            records = collection.manifest.documents()
            return {
                **collection.info(),
                "failures": [{"path": r.path, "error": r.error} for r in records if r.status == "failed"],
                "ocr": [
                    {"path": r.path, "engine": r.ocr_engine, "pages": r.ocr_pages}
                    for r in records
                    if r.ocr_pages
                ],
                "warnings": [{"path": r.path, "warning": r.warning} for r in records if r.warning],
            }

    def create(self, name: str, options: CreateOptions) -> dict:
        """The collection's configuration written from the model's facts (models/facts.py): no
        weights load, and the embedded store makes its table at the first add."""
        from embedhub.models.facts import facts_of
        from embedhub.models.loading import resolve

        settings = self._settings(options.backend)
        reference = options.model or settings.model
        resolved = resolve(reference, settings)
        facts = facts_of(resolved, settings)
        caller = CALLER.get()
        with self._opened() as knowledge_base:
            if caller is not None:
                CollectionGuard(knowledge_base, caller.store).check_create(caller.principal)
            config = knowledge_base.define(
                name,
                facts,
                model_reference=reference if reference != "auto" else resolved.spec.name,
                dimensions=options.dimensions,
                instruction=options.instruction,
                chunk_tokens=options.chunk_tokens,
                chunk_overlap=options.chunk_overlap,
                lexical_language=options.lexical_language,
                store=options.store,
                store_uri=options.store_uri,
            )
            if caller is not None:
                guard = CollectionGuard(knowledge_base, caller.store)
                guard.created(caller.principal, knowledge_base.get(name))
        return asdict(config)

    def _settings(self, backend: str | None = None, ann_min_rows: int | None = None) -> Settings:
        updates = {
            key: value for key, value in (("backend", backend), ("ann_min_rows", ann_min_rows)) if value
        }
        return self.settings.model_copy(update=updates) if updates else self.settings

    def add_paths(self, name: str, options: AddOptions, progress=None) -> dict:
        """Ingest in this process (or on Ray workers when `options.ray` names a cluster), as
        `Ingestor.ingest` does, with its summary (and the Ray figures under "ray")."""
        settings = self._settings(options.backend, options.ann_min_rows)
        address = options.ray
        if address is not None and address.strip().lower() in ("off", "none", ""):
            address = None
        if address is not None:
            from embedhub.kb.distributed import import_ray

            import_ray()  # without Ray: say how to install it before anything loads
        with self._lock:
            knowledge_base = KnowledgeBase(settings)
            try:
                collection = self._collection(knowledge_base, name, Need.EDIT)
                if address is None:
                    from embedhub.kb.ingest import Ingestor
                    from embedhub.kb.ocr import OcrOptions
                    from embedhub.models.backends import load_encoder

                    started = time.perf_counter()
                    encoder = load_encoder(collection.config.model_reference, settings)
                    self._loaded("model", collection.config.model, started)
                    collection.check_encoder(encoder)
                    ocr = OcrOptions.from_settings(settings)
                    ingestor = Ingestor(collection, encoder, progress, ocr=ocr)
                    report = ingestor.ingest(list(options.paths), glob=options.glob, sync=options.sync)
                    summary = report.summary()
                    summary["files"] = report.files()
                else:
                    from embedhub.kb.distributed import RayIngest

                    runner = RayIngest(
                        collection, settings, progress, address=address, actors=options.ray_actors
                    )
                    report = runner.ingest(list(options.paths), glob=options.glob, sync=options.sync)
                    summary = report.summary()
                    summary["files"] = report.files()
                    summary["ray"] = {
                        "address": runner.address,
                        "actors": runner.started,
                        "replaced": runner.replaced,
                    }
                paths = ", ".join(str(path) for path in options.paths)
                self._record(knowledge_base, "add_folder", name, f"{paths} ({summary['added']} added)")
                return summary
            finally:
                knowledge_base.close()

    def remove_paths(self, name: str, paths: list[Path]) -> list[str]:
        from embedhub.kb.ingest import remove_paths

        with self._opened() as knowledge_base:
            removed = remove_paths(self._collection(knowledge_base, name, Need.EDIT), paths)
            for path in removed:
                self._record(knowledge_base, "delete", name, path)
            return removed

    def drop(self, name: str) -> None:
        with self._opened() as knowledge_base:
            self._collection(knowledge_base, name, Need.MANAGE)
            knowledge_base.drop(name)
            caller = CALLER.get()
            if caller is not None:
                CollectionGuard(knowledge_base, caller.store).dropped(caller.principal, name)

    def failures(self, name: str) -> list[dict]:
        """The collection's kept failures, oldest first, as GET .../failures lists them."""
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name)
            return [failure.to_dict() for failure in collection.manifest.failures()]

    def dismiss_failures(self, name: str, paths: list[str] | None) -> int:
        """Forget the failures of these stored paths (every one with None), as the DELETE routes
        do: a path with no kept failure is an error, and nothing is dismissed then."""
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name, Need.EDIT)
            manifest = collection.manifest
            if paths is None:
                dismissed = manifest.dismiss_failures()
                self._record(knowledge_base, "dismiss_failures", name, f"{dismissed} failure(s)")
                return dismissed
            kept = {failure.path for failure in manifest.failures()}
            missing = [path for path in paths if path not in kept]
            if missing:
                raise FailureNotFoundError(f"collection {name!r} has no kept failure for {missing[0]!r}")
            dismissed = manifest.dismiss_failures(paths)
            for path in paths:
                self._record(knowledge_base, "dismiss_failures", name, path[:2000])
            return dismissed

    @contextmanager
    def _guard(self) -> Iterator[tuple[CollectionGuard, Principal]]:
        """The access rule as the caller (this machine's user: an admin, when none is set)."""
        caller = CALLER.get()
        with self._opened() as knowledge_base:
            if caller is not None:
                yield CollectionGuard(knowledge_base, caller.store), caller.principal
                return
            from embedhub.accounts.store import AccountStore

            store = AccountStore.for_home(self.settings.home)
            try:
                yield CollectionGuard(knowledge_base, store), THIS_MACHINE
            finally:
                store.close()

    def access(self, name: str) -> dict:
        with self._guard() as (guard, principal):
            collection, level = guard.open(principal, name)
            return guard.describe(principal, collection, level)

    def share(self, name: str, kind: str, member: str, role: str) -> dict:
        with self._guard() as (guard, principal):
            return guard.share(principal, name, kind, member, role)

    def unshare(self, name: str, kind: str, member: str) -> dict:
        with self._guard() as (guard, principal):
            return guard.unshare(principal, name, kind, member)
