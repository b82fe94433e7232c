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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from embedhub.access.client import ServerClient, ServerRequestError
from embedhub.access.contract import AddOptions, CreateOptions, FailureNotFoundError, SearchContext
from embedhub.errors import InvalidInputError
from embedhub.kb.ask import AskOptions
from embedhub.kb.files import gather_files, under_paths, unsupported_reason
from embedhub.kb.lexical import Analyzer
from embedhub.kb.search import SearchOptions, SearchResult

if TYPE_CHECKING:
    from embedhub.kb.ingest import Progress

#: how long `add` through a server waits for its ingestion jobs before answering with the rest
#: still running (they go on in the server)
ADD_WAIT_SECONDS = 600.0
JOB_POLL_SECONDS = 0.25
FINISHED_JOBS = ("done", "failed", "cancelled")
OUTCOMES = ("added", "updated", "skipped")
#: files per request when `kb add` uploads (a server that may not read the folder in place)
UPLOAD_BATCH = 32


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
        finished, waiting = self._follow(name, queued["jobs"], None, ADD_WAIT_SECONDS)
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

    def _follow(
        self, name: str, queued: list[dict], progress: Progress | None, wait: float
    ) -> tuple[dict[str, dict], set[str]]:
        """Poll the collection's jobs until `queued` have finished (or `wait` seconds passed),
        telling `progress` what the in-process ingest would: each file's stage, the chunks embedded
        so far, and each file's outcome. Returns the finished jobs by id and the ids still running."""
        waiting = {job["id"] for job in queued}
        finished: dict[str, dict] = {}
        seen: dict[str, tuple] = {}
        deadline = time.monotonic() + wait
        while waiting and time.monotonic() < deadline:
            for job in self.client.call("GET", f"{self._collection_path(name)}/jobs")["data"]:
                if job["id"] not in waiting:
                    continue
                if job["status"] in FINISHED_JOBS:
                    finished[job["id"]] = job
                    waiting.discard(job["id"])
                    if progress is not None:
                        progress.file_done(_outcome(job))
                elif progress is not None and seen.get(job["id"]) != (job["status"], job["chunks"]):
                    seen[job["id"]] = (job["status"], job["chunks"])
                    progress.stage(Path(job["path"]), job["status"])
                    if job["chunks"]:
                        progress.embedded(Path(job["path"]), job["chunks"], job["progress"])
            if waiting:
                time.sleep(JOB_POLL_SECONDS)
        return finished, waiting

    def info(self, name: str) -> dict:
        details = self.client.call("GET", self._collection_path(name))
        rows = self.documents(name)
        return {
            **details,
            "failures": [{"path": r["path"], "error": r["error"]} for r in rows if r["status"] == "failed"],
            "ocr": [
                {"path": r["path"], "engine": r.get("ocr_engine"), "pages": r["ocr_pages"]}
                for r in rows
                if r.get("ocr_pages")
            ],
            "warnings": [{"path": r["path"], "warning": r["warning"]} for r in rows if r.get("warning")],
        }

    def create(self, name: str, options: CreateOptions) -> dict:
        """POST /v1/collections: the server binds the collection to one of its served models (the
        first when `options.model` is None) and makes the caller its owner."""
        body = {
            "name": name,
            "model": options.model,
            "dimensions": options.dimensions,
            "instruction": options.instruction,
            "chunk_tokens": options.chunk_tokens,
            "chunk_overlap": options.chunk_overlap,
            "lexical_language": options.lexical_language,
            "store": options.store,
            "store_uri": options.store_uri,
        }
        return self.client.call("POST", "/v1/collections", json=body)

    def add_paths(self, name: str, options: AddOptions, progress: Progress | None = None) -> dict:
        """Each path (a file or a folder on this machine) queued with the server's folder route, so
        the server reads it in place; one the server may not read (outside its folder roots) is
        uploaded instead and listed under "uploaded". The jobs are followed to the end; with
        `sync`, the documents under the paths read in place whose files are gone are deleted."""
        started = time.monotonic()
        base = self._collection_path(name)
        queued: list[dict] = []
        unsupported: list[str] = []
        refused: list[dict] = []
        uploaded: list[str] = []
        rejected: list[dict] = []
        for path in options.paths:
            target = path.expanduser().resolve()
            if not target.exists():
                raise InvalidInputError(f"{path} does not exist")
            request = {"path": str(target), "glob": options.glob, "ray": options.ray}
            try:
                answer = self.client.call("POST", f"{base}/folders", json=request)
            except ServerRequestError as error:
                if error.status != 403 or error.code == "access_denied":
                    raise
                # the server may not read it in place (outside its folder roots, or server folders
                # off): send the files instead, as the web UI's upload does
                answer = self._upload(name, target, options.glob)
                uploaded.append(str(target))
            queued += answer["jobs"]
            unsupported += answer["unsupported"]
            refused += answer["refused"]
            rejected += answer.get("rejected", [])
        if progress is not None:
            progress.start(len(queued))
        finished, waiting = self._follow(name, queued, progress, ADD_WAIT_SECONDS)
        in_place = tuple(path for path in options.paths if str(path.expanduser().resolve()) not in uploaded)
        removed = self._sync(name, in_place) if options.sync and not waiting else []
        folder_jobs = [job for job in finished.values() if job.get("kind") == "folder" and job.get("summary")]
        jobs = [job for job in finished.values() if job not in folder_jobs]
        done = [job for job in jobs if job["status"] == "done"]
        failed = [job for job in jobs if job["status"] != "done"]
        changed = [job for job in done if job["outcome"] in ("added", "updated")]
        summary = {
            **{outcome: sum(1 for job in done if job["outcome"] == outcome) for outcome in OUTCOMES},
            "failed": len(failed) + len(rejected),
            "removed": len(removed),
            "unsupported": len(unsupported),
            "chunks": sum(job["chunks"] for job in changed),
            "tokens": sum(job["tokens"] for job in changed),
            "seconds": round(time.monotonic() - started, 3),
            "failures": [{"path": job["path"], "error": job["error"]} for job in failed] + rejected,
            "refused": refused,
            "still_running": len(waiting),
            "uploaded": uploaded,
            # options that only shape an ingest in this process: the server keeps its own settings
            "ignored": [
                flag
                for flag, given in (("--backend", options.backend), ("--ann-min-rows", options.ann_min_rows))
                if given
            ],
        }
        for job in folder_jobs:  # a folder ingested on Ray: its own summary
            for key in (*OUTCOMES, "failed", "chunks", "tokens"):
                summary[key] += job["summary"].get(key, 0)
            summary["failures"] += job["summary"].get("failures", [])
        # every file's outcome, as an ingest here lists it (`kb add --json` "files", its exit code)
        summary["files"] = [
            *(_file(job["path"], job["outcome"], job["chunks"], job["tokens"]) for job in done),
            *(_file(f["path"], "failed", error=f["error"]) for f in summary["failures"] + refused),
            *(_file(path, "unsupported", error=unsupported_reason(Path(path))) for path in unsupported),
        ]
        return summary

    def _upload(self, name: str, target: Path, glob: str | None) -> dict:
        """The files under `target` sent to the upload route in batches, stored in the collection
        as `FOLDER/relative/path` (a changed file replaces its earlier copy); the answer in the
        folder route's form, plus the files the server rejected (with its reason)."""
        files, unsupported = gather_files([target], glob)
        jobs: list[dict] = []
        rejected: list[dict] = []
        for start in range(0, len(files), UPLOAD_BATCH):
            batch = files[start : start + UPLOAD_BATCH]
            form = [
                ("files", (file.relative_to(target.parent).as_posix(), file.read_bytes())) for file in batch
            ]
            path = f"{self._collection_path(name)}/files"
            answer = self.client.call("POST", path, files=form, data={"on_conflict": "replace"})
            jobs += answer["jobs"]
            rejected += [{"path": row["filename"], "error": row["error"]} for row in answer["rejected"]]
        return {
            "jobs": jobs,
            "unsupported": [str(path) for path in unsupported],
            "refused": [],
            "rejected": rejected,
        }

    def _sync(self, name: str, paths: tuple[Path, ...]) -> list[str]:
        """Delete the documents under `paths` whose files are gone (as `kb add --sync` in process)."""
        gone = [
            row
            for row in under_paths(self.documents(name), list(paths), lambda row: row["path"])
            if not Path(row["path"]).exists()
        ]
        self.delete(name, [row["doc_id"] for row in gone])
        return [row["path"] for row in gone]

    def remove_paths(self, name: str, paths: list[Path]) -> list[str]:
        chosen = under_paths(self.documents(name), paths, lambda row: row["path"])
        self.delete(name, [row["doc_id"] for row in chosen])
        return [row["path"] for row in chosen]

    def drop(self, name: str) -> None:
        self.client.call("DELETE", self._collection_path(name))

    def failures(self, name: str) -> list[dict]:
        return self.client.call("GET", f"{self._collection_path(name)}/failures")["data"]

    def dismiss_failures(self, name: str, paths: list[str] | None) -> int:
        """DELETE .../failures (every one), or each path's failure by its id: all paths are
        checked against the list first, so an unknown one dismisses nothing."""
        base = f"{self._collection_path(name)}/failures"
        if paths is None:
            return self.client.call("DELETE", base)["dismissed"]
        ids = {failure["path"]: failure["id"] for failure in self.failures(name)}
        missing = [path for path in paths if path not in ids]
        if missing:
            raise FailureNotFoundError(f"collection {name!r} has no kept failure for {missing[0]!r}")
        return sum(
            self.client.call("DELETE", f"{base}/{quote(ids[path], safe='')}")["dismissed"] for path in paths
        )

    def access(self, name: str) -> dict:
        return self.client.call("GET", f"{self._collection_path(name)}/access")

    def share(self, name: str, kind: str, member: str, role: str) -> dict:
        body = {"kind": kind, "name": member, "role": role}
        return self.client.call("PUT", f"{self._collection_path(name)}/access/shares", json=body)

    def unshare(self, name: str, kind: str, member: str) -> dict:
        path = f"{self._collection_path(name)}/access/shares/{quote(kind, safe='')}/{quote(member, safe='')}"
        return self.client.call("DELETE", path)


def _outcome(job: dict):
    """A finished job as the in-process ingest reports a file (for the progress display)."""
    from embedhub.kb.ingest import FileOutcome, FileStatus  # the parsers: only when adding

    status = job["outcome"] if job["status"] == "done" and job["outcome"] else "failed"
    error = job["error"] or ("cancelled" if job["status"] == "cancelled" else None)
    return FileOutcome(job["path"], FileStatus(status), job["chunks"], job["tokens"], error)


def _file(path: str, status: str, chunks: int = 0, tokens: int = 0, error: str | None = None) -> dict:
    """One file's outcome in the form an ingest here reports it (`IngestReport.files`)."""
    return {"path": path, "status": status, "chunks": chunks, "tokens": tokens, "error": error}
