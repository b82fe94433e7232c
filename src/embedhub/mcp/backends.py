"""How the MCP tools reach the knowledge base, by the rule `embedhub kb search` follows.

- A running `embedhub serve` for the same EMBEDHUB_HOME (found by access/discovery.py): every tool
  goes through its HTTP API (access/client.py). The server owns the store and has the model
  loaded; nothing is opened here, so two processes never write one LanceDB folder. Adding files
  queues the server's ingestion jobs and waits for them. While it loads its model (503) a tool
  says so instead of opening the store beside it.
- No server: in this process, on the embedded store. The collection's model loads on the first
  search or add and stays loaded; each call opens the collections it needs and closes them after
  (documents another process wrote are seen at the next call), one call at a time.

The choice is made again at every tool call: starting or stopping `embedhub serve` while an
agent is connected takes effect at its next call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from embedhub.access.client import ServerClient
from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.kb.search import SearchResult
from embedhub.kb.store import SearchFilter

#: how long `add` through a server waits for its ingestion jobs before answering with the rest
#: still running (they go on in the server)
ADD_WAIT_SECONDS = 600.0
JOB_POLL_SECONDS = 0.25
FINISHED_JOBS = ("done", "failed", "cancelled")
OUTCOMES = ("added", "updated", "skipped")


class DocumentNotFoundError(EmbedhubError, LookupError):
    """No document by that id in the collection."""


@dataclass(frozen=True)
class Caller:
    """Who calls the tools over HTTP with accounts on: their identity, the key they sent (passed on
    to a running server, which then applies their access) and the account store (in-process)."""

    principal: Any
    token: str | None
    store: Any


#: set for the duration of one MCP request (stdio and accounts off: None, the machine's user)
CALLER: ContextVar[Caller | None] = ContextVar("embedhub_mcp_caller", default=None)


@dataclass
class SearchContext:
    """A searcher over one collection, and (in-process only) that collection and its encoder, for
    an answerer that wants them."""

    searcher: Any
    collection: Any = None
    encoder: Any = None


class KnowledgeBaseAccess(Protocol):
    """What the tools need; `via` says which way a call went (shown in results)."""

    via: str

    def collection_names(self) -> list[str]: ...
    def collections(self) -> list[dict]: ...
    def searcher(self, name: str, *, rerank: bool, needs_model: bool) -> Any: ...
    def documents(self, name: str) -> list[dict]: ...
    def document(self, name: str, doc_id: str) -> dict: ...
    def add(self, name: str, path: Path, glob: str | None) -> dict: ...
    def delete(self, name: str, doc_ids: list[str]) -> None: ...
    def ask(self, name: str, question: str, *, k: int, rerank: bool) -> dict: ...


def chunk_view(row) -> dict:
    """A stored chunk as the HTTP API's document detail shows it."""
    return {
        "id": row.id, "index": row.chunk_index, "text": row.text, "page_start": row.page_start,
        "page_end": row.page_end, "heading_path": list(row.heading_path), "char_start": row.char_start,
        "char_end": row.char_end,
    }  # fmt: skip


class LocalKnowledgeBase:
    via = "in-process"

    def __init__(self, settings: Settings, reranker: str | None = None) -> None:
        self.settings = settings
        self.reranker_folder = reranker
        self._reranker = None
        self._encoders: dict[str, Any] = {}
        self._lock = threading.RLock()

    @contextmanager
    def _opened(self) -> Iterator[Any]:
        from embedhub.kb.collection import KnowledgeBase

        with self._lock:
            knowledge_base = KnowledgeBase(self.settings)
            try:
                yield knowledge_base
            finally:
                knowledge_base.close()

    def _encoder(self, collection) -> Any:
        reference = collection.config.model_reference
        if reference not in self._encoders:
            from embedhub.models.loading import load_encoder

            self._encoders[reference] = load_encoder(reference, self.settings)
        encoder = self._encoders[reference]
        collection.check_encoder(encoder)
        return encoder

    def _loaded_reranker(self) -> Any:
        if self.reranker_folder is None:
            return None
        if self._reranker is None:
            from embedhub.models.reranker import load_reranker

            self._reranker = load_reranker(self.reranker_folder, self.settings)
        return self._reranker

    def _collection(self, knowledge_base, name: str, need: str = "view"):
        """The collection, through the access rule when a user calls (accounts on)."""
        caller = CALLER.get()
        if caller is None:
            return knowledge_base.get(name)
        from embedhub.accounts.guard import CollectionGuard

        return CollectionGuard(knowledge_base, caller.store).open(caller.principal, name, need)[0]

    def _record(self, knowledge_base, action: str, name: str, detail: str) -> None:
        caller = CALLER.get()
        if caller is not None and caller.store is not None:
            caller.store.record(caller.principal.label, action, name, detail)

    def collection_names(self) -> list[str]:
        from embedhub.kb.collection import KnowledgeBase

        if CALLER.get() is not None:
            return [row["name"] for row in self.collections()]
        return KnowledgeBase(self.settings).names()

    def collections(self) -> list[dict]:
        with self._opened() as knowledge_base:
            caller = CALLER.get()
            if caller is None:
                return [knowledge_base.get(name).info() for name in knowledge_base.names()]
            from embedhub.accounts.guard import CollectionGuard

            visible = CollectionGuard(knowledge_base, caller.store).visible(caller.principal)
            return [collection.info() for collection, _ in visible]

    @contextmanager
    def searcher(
        self, name: str, *, rerank: bool = False, needs_model: bool = True
    ) -> Iterator[SearchContext]:
        from embedhub.kb.search import Searcher

        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name)
            encoder = self._encoder(collection) if needs_model else None
            reranker = self._loaded_reranker() if rerank else None
            yield SearchContext(Searcher(collection, encoder, reranker), collection, encoder)

    def ask(self, name: str, question: str, *, k: int, rerank: bool) -> dict:
        """embedhub.kb.ask in this process, with the chat endpoint of this process's settings."""
        from embedhub.kb.ask import ChatSettings, ask

        with self.searcher(name, rerank=rerank) as context:
            answer = ask(
                context.collection, context.encoder, question, k=k,
                reranker=context.searcher.reranker, chat=ChatSettings.from_settings(self.settings),
            )  # fmt: skip
        return answer.to_dict()

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
        from embedhub.kb.access import OUTSIDE_BY_SYMLINK, check_folder, is_within
        from embedhub.kb.ingest import Ingestor, gather_files

        # the same folder rule as the HTTP API's: any folder when only this machine can reach the
        # tools (stdio, a loopback bind), the listed roots otherwise
        roots = check_folder(self.settings, path, str(path))
        with self._opened() as knowledge_base:
            collection = self._collection(knowledge_base, name, "edit")
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
            collection = self._collection(knowledge_base, name, "edit")
            records = [collection.manifest.get(doc_id) for doc_id in doc_ids]
            remove_documents(collection, doc_ids)
            for record in records:
                if record is not None:
                    remove_uploaded_copy(collection, record.path)
                    self._record(knowledge_base, "delete", name, record.path)


class RemoteSearcher:
    """`Searcher.search` answered by the server's search endpoint (same parameters and results)."""

    _FIELDS = tuple(field.name for field in fields(SearchResult))

    def __init__(self, client: ServerClient, name: str, rerank: bool = False) -> None:
        self.client = client
        self.name = name
        self.rerank = rerank

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        where: SearchFilter | None = None,
        fusion: str = "weighted",
        per_document: int | None = None,
        **options: Any,
    ) -> list[SearchResult]:
        where = where or SearchFilter()
        request = {
            "query": query, "k": k, "mode": mode, "fusion": fusion, "per_document": per_document,
            "path_glob": where.path_glob, "file_types": list(where.file_types), "page_min": where.page_min,
            "page_max": where.page_max, **options,
        }  # fmt: skip
        if self.rerank:
            request["rerank"] = True
        path = f"/v1/collections/{quote(self.name, safe='')}/search"
        hits = self.client.call("POST", path, json=request)["results"]
        return [SearchResult(**{key: hit[key] for key in self._FIELDS if key in hit}) for hit in hits]


class ServedKnowledgeBase:
    via = "embedhub serve"

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def _collection_path(self, name: str) -> str:
        return f"/v1/collections/{quote(name, safe='')}"

    def collection_names(self) -> list[str]:
        return [row["name"] for row in self.collections()]

    def collections(self) -> list[dict]:
        return self.client.call("GET", "/v1/collections")["data"]

    @contextmanager
    def searcher(
        self, name: str, *, rerank: bool = False, needs_model: bool = True
    ) -> Iterator[SearchContext]:
        yield SearchContext(RemoteSearcher(self.client, name, rerank))

    def documents(self, name: str) -> list[dict]:
        return self.client.call("GET", f"{self._collection_path(name)}/documents")["data"]

    def document(self, name: str, doc_id: str) -> dict:
        return self.client.call("GET", f"{self._collection_path(name)}/documents/{quote(doc_id, safe='')}")

    def add(self, name: str, path: Path, glob: str | None) -> dict:
        base = self._collection_path(name)
        queued = self.client.call("POST", f"{base}/folders", json={"path": str(path), "glob": glob})
        waiting = {job["id"] for job in queued["jobs"]}
        finished: dict[str, dict] = {}
        deadline = time.monotonic() + ADD_WAIT_SECONDS
        while waiting and time.monotonic() < deadline:
            for job in self.client.call("GET", f"{base}/jobs")["data"]:
                if job["id"] in waiting and job["status"] in FINISHED_JOBS:
                    finished[job["id"]] = job
                    waiting.discard(job["id"])
            if waiting:
                time.sleep(JOB_POLL_SECONDS)
        jobs = list(finished.values())
        done = [job for job in jobs if job["status"] == "done"]
        failed = [job for job in jobs if job["status"] != "done"]
        return {
            **{outcome: sum(1 for job in done if job["outcome"] == outcome) for outcome in OUTCOMES},
            "failed": len(failed),
            "chunks": sum(job["chunks"] for job in done if job["outcome"] in ("added", "updated")),
            "failures": [{"path": job["path"], "error": job["error"]} for job in failed],
            "unsupported": len(queued["unsupported"]),
            "refused": queued["refused"],
            "still_running": len(waiting),
        }

    def delete(self, name: str, doc_ids: list[str]) -> None:
        for doc_id in doc_ids:
            self.client.call("DELETE", f"{self._collection_path(name)}/documents/{quote(doc_id, safe='')}")

    def ask(self, name: str, question: str, *, k: int, rerank: bool) -> dict:
        """The server's ask route (its chat endpoint, its reranker), answered as one JSON."""
        request = {"question": question, "k": k, "stream": False, "rerank": rerank}
        return self.client.call("POST", f"{self._collection_path(name)}/ask", json=request)


class Access:
    """The knowledge base as the tools see it at each call (see the module docstring)."""

    def __init__(self, settings: Settings, reranker: str | None = None) -> None:
        self.settings = settings
        self.local = LocalKnowledgeBase(settings, reranker)

    def current(self) -> KnowledgeBaseAccess:
        caller = CALLER.get()
        client = ServerClient.for_home(self.settings, token=caller.token if caller is not None else None)
        if client is None:
            return self.local
        if caller is not None and not client.call("GET", "/v1/auth/me").get("accounts"):
            # that server would let any key through: users' access could not apply
            raise EmbedhubError(
                "the embedhub serve running for this home has accounts off, so it cannot apply your "
                "access; start it with EMBEDHUB_ACCOUNTS=on (or bind it publicly)"
            )
        return ServedKnowledgeBase(client)
