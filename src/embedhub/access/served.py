"""The knowledge base through the running `embedhub serve` for this home: every call goes through
its HTTP API with the caller's key. The server owns the store and has the model loaded; nothing is
opened here, so two processes never write one LanceDB folder. Adding files queues the server's
ingestion jobs and waits for them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from embedhub.access.client import ServerClient
from embedhub.access.contract import SearchContext
from embedhub.kb.ask import AskOptions
from embedhub.kb.lexical import Analyzer
from embedhub.kb.search import SearchOptions, SearchResult

#: how long `add` through a server waits for its ingestion jobs before answering with the rest
#: still running (they go on in the server)
ADD_WAIT_SECONDS = 600.0
JOB_POLL_SECONDS = 0.25
FINISHED_JOBS = ("done", "failed", "cancelled")
OUTCOMES = ("added", "updated", "skipped")


class RemoteSearcher:
    """`Searcher.find` / `search` answered by the server's search endpoint (same options and results)."""

    _FIELDS = tuple(field.name for field in fields(SearchResult))

    def __init__(self, client: ServerClient, name: str, rerank: bool = False) -> None:
        self.client = client
        self.name = name
        self.rerank = rerank
        self._analyzer: Analyzer | None = None

    @property
    def analyzer(self) -> Analyzer:
        """The collection's analyzer (its lexical language, asked of the server once), for
        highlighting evidence here as the server would."""
        if self._analyzer is None:
            info = self.client.call("GET", f"/v1/collections/{quote(self.name, safe='')}")
            self._analyzer = Analyzer(info.get("lexical_language", "english"))
        return self._analyzer

    def search(self, query: str, **options: Any) -> list[SearchResult]:
        return self.find(SearchOptions(query, **options))

    def find(self, options: SearchOptions) -> list[SearchResult]:
        request = options.request()
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

    def ask(self, name: str, options: AskOptions, *, rerank: bool) -> dict:
        """The server's ask route (its chat endpoint, its reranker), answered as one JSON."""
        request = {
            "question": options.question,
            "history": list(options.history),
            "k": options.k,
            "mode": options.mode,
            "per_document": options.per_document,
            "stream": False,
            "rerank": rerank,
        }
        return self.client.call("POST", f"{self._collection_path(name)}/ask", json=request)
