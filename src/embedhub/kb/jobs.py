"""Background ingestion jobs: one job per file, run by a small worker pool.

Status: queued -> parsing -> embedding -> done | failed (with the reason) | cancelled. While
embedding, `progress` (0..1: the share of the document's characters embedded so far) and `chunks`
(chunks stored so far) move after every batch. Observers (the HTTP layer's Server-Sent Events)
read `changes_since`.

Cancelling works in every active state: a queued job is cancelled at once; a running one is asked
to stop and does so at its next batch (or while its inputs wait for the model), its uncommitted
rows are deleted and the document's previous version stays. A cancelled upload's stored file is
removed from the collection's uploads folder, unless a committed version of that document still
points at it. `cancel_collection` cancels a collection's jobs and waits for them to roll back
(dropping a collection uses it).

Jobs are persisted in SQLite (`HOME/jobs.sqlite`, one row per job, rewritten on every change), so
they survive a restart. On start, jobs that were active when the server stopped (a crash, or a
graceful shutdown, which stops running jobs at their next batch and rolls them back) are resumed:
re-queued from the start of their file, when the file is still there (the document is rewritten
under a new generation; a committed version that is already current is skipped by its content
hash), with `resumed` counting how often. A job whose file is gone is marked failed with the
reason; it can be retried once the file is back.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from embedhub.config import Settings
from embedhub.engine.queue import QueueStopped, SubmitCancelled
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.errors import EmbedhubError
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import (
    CHANGED,
    FileOutcome,
    FileStatus,
    IngestCancelled,
    Ingestor,
    Progress,
    document_id,
)
from embedhub.kb.ocr import OcrOptions
from embedhub.kb.rate import RateMeter
from embedhub.models.base import Encoder

logger = logging.getLogger(__name__)
ACTIVE = ("queued", "parsing", "embedding")
FINISHED = ("done", "failed", "cancelled")
#: finished jobs kept in the job store (the newest); active ones are always kept
KEEP_FINISHED = 2000


class JobError(EmbedhubError, LookupError):
    """No such job, or the job cannot do what was asked in its state."""


@dataclass
class Job:
    id: str
    collection: str
    path: str
    name: str
    status: str = "queued"
    error: str | None = None
    chunks: int = 0
    tokens: int = 0
    #: share of the document embedded (0..1); 1 when done; a failed or cancelled job keeps the
    #: share it had reached (it is drawn at that, with its state named)
    progress: float = 0.0
    #: while embedding: chunks per second, seconds left at that pace, and the document's chunks
    #: (estimated from the share of its text the chunks so far cover); see kb/rate.py
    rate: float | None = None
    eta_seconds: float | None = None
    chunks_total: int | None = None
    outcome: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    sequence: int = 0
    attempts: int = 0
    #: a cancel was asked for and the job is rolling back
    cancel_requested: bool = False
    #: times the job was re-queued after a server restart
    resumed: int = 0
    #: "file" (one file, in this process) or "folder" (a whole folder on Ray, kb/distributed.py)
    kind: str = "file"
    #: a folder job: the Ray address, the glob, files left out (reached through a symlink leading
    #: outside the allowed roots), and what the ingest did (`IngestReport.summary`) once done
    ray: str | None = None
    glob: str | None = None
    exclude: list[str] = field(default_factory=list)
    summary: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _JobProgress(Progress):
    """Moves the job after every embedding call inside its document (`EMBED_CHUNKS` chunks), with
    the pace and the time left, so a large file's progress is seen to move."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager, self.job, self.meter = manager, job, RateMeter()

    def stage(self, path: Path, stage: str) -> None:
        if stage == "embedding":
            self.meter.restart()
        self.manager._update(self.job, status=stage)

    def embedded(self, path: Path, chunks: int, fraction: float) -> None:
        estimate = self.meter.estimate(chunks, fraction)
        self.manager._update(
            self.job,
            chunks=chunks,
            progress=round(fraction, 4),
            rate=estimate.chunks_per_second,
            eta_seconds=estimate.seconds_left,
            chunks_total=estimate.chunks_total,
        )


class _FolderProgress(Progress):
    """A folder job's progress: the share of its files done and the chunks written so far."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager, self.job, self.total, self.done, self.chunks = manager, job, 1, 0, 0

    def start(self, files: int) -> None:
        self.total = max(1, files)
        self.manager._update(self.job, status="embedding")

    def file_done(self, outcome: FileOutcome) -> None:
        self.done += 1
        self.chunks += outcome.chunks if outcome.status in CHANGED else 0
        self.manager._update(self.job, chunks=self.chunks, progress=round(self.done / self.total, 4))


class _JobStore:
    """The jobs table: one JSON document per job."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, collection TEXT, created_at REAL, "
            "data TEXT NOT NULL)"
        )

    def load(self) -> list[Job]:
        known = {f.name for f in fields(Job)}
        jobs = []
        for (data,) in self.db.execute("SELECT data FROM jobs ORDER BY created_at"):
            values = json.loads(data)
            jobs.append(Job(**{k: v for k, v in values.items() if k in known}))
        return jobs

    def save(self, job: Job) -> None:
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                (job.id, job.collection, job.created_at, json.dumps(job.to_dict())),
            )

    def delete_collection(self, collection: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM jobs WHERE collection = ?", (collection,))

    def delete(self, job_ids: list[str]) -> None:
        with self._lock:
            self.db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in job_ids])

    def close(self) -> None:
        with self._lock:
            self.db.close()


class JobManager:
    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        encoder_for: Callable[[str], Encoder],
        workers: int = 1,
        *,
        store_path: Path | None = None,
        settings: Settings | None = None,
    ):
        self.knowledge_base = knowledge_base
        self.settings = settings or knowledge_base.settings
        self.encoder_for = encoder_for
        self.jobs: dict[str, Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedhub-ingest")
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._changed = threading.Condition(self._lock)
        self._collection_locks: dict[str, threading.Lock] = {}
        self._stop_events: dict[str, threading.Event] = {}
        self._closing = threading.Event()
        self._store = _JobStore(store_path) if store_path is not None else None

    # --- restart ---------------------------------------------------------------------------
    def resume(self) -> list[Job]:
        """Load persisted jobs; re-queue the ones a stop interrupted (see the module docstring)."""
        if self._store is None:
            return []
        resumed = []
        loaded = self._store.load()
        finished = [job for job in loaded if job.status in FINISHED]
        stale = [job.id for job in finished[: max(0, len(finished) - KEEP_FINISHED)]]
        self._store.delete(stale)
        for job in loaded:
            if job.id in stale:
                continue
            with self._lock:
                job.sequence = next(self._counter)
                self.jobs[job.id] = job
            if job.status not in ACTIVE:
                continue
            if not (Path(job.path).is_dir() if job.kind == "folder" else Path(job.path).is_file()):
                error = (
                    f"the server stopped while this job was {job.status} and its file {job.path} "
                    "is gone; upload it again (or put it back and retry the job)"
                )
                self._update(job, status="failed", cancel_requested=False, error=error)
                self._keep_failure(job, error)
                continue
            self._update(
                job,
                status="queued",
                cancel_requested=False,
                progress=0.0,
                chunks=0,
                resumed=job.resumed + 1,
                error=None,
            )
            self._pool.submit(self._run, job)
            resumed.append(job)
        return resumed

    # --- the API -----------------------------------------------------------------------------
    def submit(self, collection: str, path: Path, name: str | None = None) -> Job:
        if self._closing.is_set():
            raise QueueStopped("the server is shutting down; submit the file again after it restarts")
        job = Job(id=uuid.uuid4().hex[:12], collection=collection, path=str(path), name=name or path.name)
        return self._enqueue(job)

    def submit_folder(
        self,
        collection: str,
        folder: Path,
        *,
        ray: str,
        glob: str | None = None,
        exclude: list[Path] | None = None,
    ) -> Job:
        """One job that ingests a whole folder on Ray (kb/distributed.py): its workers parse and
        embed, this process commits; `progress` is the share of the folder's files done."""
        if self._closing.is_set():
            raise QueueStopped("the server is shutting down; submit the folder again after it restarts")
        job = Job(
            id=uuid.uuid4().hex[:12],
            collection=collection,
            path=str(folder),
            name=folder.name or str(folder),
            kind="folder",
            ray=ray,
            glob=glob,
            exclude=[str(path) for path in exclude or ()],
        )
        return self._enqueue(job)

    def _enqueue(self, job: Job) -> Job:
        """Number, record, persist and start a new job."""
        with self._lock:
            job.sequence = next(self._counter)
            self.jobs[job.id] = job
            self._changed.notify_all()
        self._save(job)
        self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobError(f"no job {job_id!r}")
        return job

    def list(self, collection: str | None = None) -> list[Job]:
        jobs = [j for j in list(self.jobs.values()) if collection is None or j.collection == collection]
        return sorted(jobs, key=lambda job: job.created_at)

    def changes_since(self, sequence: int, collection: str | None = None) -> list[Job]:
        return [job for job in self.list(collection) if job.sequence > sequence]

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or ask a running one to stop at its next batch."""
        job = self.get(job_id)
        with self._lock:  # one decision against `_run`, which checks the status under this lock
            status = job.status
            if status not in ACTIVE:
                raise JobError(f"job {job_id} is {status}; only queued or running jobs can be cancelled")
            job.cancel_requested = True
            if status == "queued":
                job.status, job.error = "cancelled", "cancelled"
            event = self._stop_events.get(job.id)
            if event is not None:
                event.set()
        if status == "queued":
            self._remove_upload(job)
        self._update(job)  # publish the change (sequence, store)
        return job

    def wait_finished(self, job_ids: list[str], timeout: float) -> bool:
        """Block until these jobs are no longer active (or the timeout passes)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(self.jobs[i].status not in ACTIVE for i in job_ids if i in self.jobs),
                timeout=timeout,
            )

    def cancel_collection(self, collection: str, timeout: float = 60.0) -> None:
        """Cancel every active job of a collection and wait for them to roll back."""
        active = [job for job in self.list(collection) if job.status in ACTIVE]
        for job in active:
            with contextlib.suppress(JobError):  # finished meanwhile
                self.cancel(job.id)
        if not self.wait_finished([job.id for job in active], timeout):
            raise JobError(
                f"the jobs of collection {collection!r} did not stop within {timeout:.0f}s; try again"
            )

    def forget_collection(self, collection: str) -> None:
        """Drop the job history of a collection (after the collection itself was dropped)."""
        with self._lock:
            for job_id in [i for i, j in self.jobs.items() if j.collection == collection]:
                del self.jobs[job_id]
            self._changed.notify_all()
        if self._store is not None:
            self._store.delete_collection(collection)

    def retry(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status not in ("failed", "cancelled"):
            raise JobError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
        if job.status == "cancelled" and job.kind == "file" and not Path(job.path).is_file():
            raise JobError(f"job {job_id} was cancelled and its uploaded file was removed; upload it again")
        self._update(job, status="queued", error=None, cancel_requested=False, progress=0.0)
        self._pool.submit(self._run, job)
        return job

    # --- internals ---------------------------------------------------------------------------
    def _save(self, job: Job) -> None:
        if self._store is not None:
            try:
                self._store.save(job)
            except sqlite3.Error:  # the store is closed during shutdown; the state is in memory
                logger.warning("could not persist job %s", job.id)

    def _update(self, job: Job, **changes) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)
            job.updated_at = time.time()
            job.sequence = next(self._counter)
            self._changed.notify_all()
        self._save(job)

    def _keep_failure(self, job: Job, reason: str) -> None:
        """A job that failed outside the ingest's own per-file handling (the model failed, the
        file vanished) is kept in its collection's failures too, with the reason."""
        try:
            collection = self.knowledge_base.get(job.collection)
            collection.manifest.record_problem(job.path, job.name, "failed", reason, "ingest")
        except (EmbedhubError, sqlite3.Error):
            logger.warning("could not record the failure of job %s", job.id)

    def _remove_upload(self, job: Job) -> None:
        """A cancelled upload (a file in the collection's uploads folder) leaves nothing behind,
        unless a committed version of the document still uses the file."""
        if job.kind != "file":
            return  # a folder on the server's disk is never removed
        try:
            collection = self.knowledge_base.get(job.collection)
        except EmbedhubError:
            return
        path = Path(job.path)
        uploads = (collection.folder / "uploads").resolve()
        record = collection.manifest.get(document_id(path))
        if path.resolve().parent == uploads and (record is None or record.generation is None):
            path.unlink(missing_ok=True)

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.status != "queued":
                return  # cancelled while waiting
            stop = threading.Event()
            self._stop_events[job.id] = stop
        if self._closing.is_set():
            stop.set()
        self._update(
            job,
            attempts=job.attempts + 1,
            progress=0.0,
            chunks=0,
            rate=None,
            eta_seconds=None,
            chunks_total=None,
        )
        lock = self._collection_locks.setdefault(job.collection, threading.Lock())
        try:
            with lock:
                if stop.is_set():
                    raise IngestCancelled("cancelled before it started")
                collection = self.knowledge_base.get(job.collection)
                if job.kind == "folder":
                    self._run_folder(job, collection, stop)
                    return
                encoder = self.encoder_for(collection.config.model)
                if isinstance(encoder, ScheduledEncoder):
                    encoder = encoder.with_stop(stop.is_set)
                ocr = OcrOptions.from_settings(self.settings)
                ingestor = Ingestor(
                    collection, encoder, _JobProgress(self, job), should_stop=stop.is_set, ocr=ocr
                )
                report = ingestor.ingest([Path(job.path)])
            outcome: FileOutcome = report.outcomes[-1]
        except (IngestCancelled, SubmitCancelled, QueueStopped) as error:
            self._stopped(job, error)
            return
        except Exception as error:
            self._update(job, status="failed", error=str(error), eta_seconds=None)
            self._keep_failure(job, str(error))
            return
        finally:
            with self._lock:
                self._stop_events.pop(job.id, None)
        if outcome.status == FileStatus.FAILED:
            self._update(job, status="failed", error=outcome.error, outcome="failed", eta_seconds=None)
        else:
            self._update(
                job,
                status="done",
                chunks=outcome.chunks,
                tokens=outcome.tokens,
                outcome=outcome.status,
                progress=1.0,
                eta_seconds=0.0,
                chunks_total=outcome.chunks,
            )

    def _run_folder(self, job: Job, collection, stop: threading.Event) -> None:
        from embedhub.kb.distributed import RayIngest

        runner = RayIngest(
            collection,
            self.settings,
            _FolderProgress(self, job),
            address=job.ray,
            should_stop=stop.is_set,
            stay_connected=True,
        )
        summary = runner.ingest([Path(job.path)], glob=job.glob, exclude=[Path(p) for p in job.exclude])
        summary = {
            **summary.summary(),
            "ray": {"address": runner.address, "actors": runner.started, "replaced": runner.replaced},
        }
        counts = ", ".join(f"{key} {summary[key]}" for key in ("added", "updated", "skipped", "failed"))
        self._update(
            job,
            status="done",
            chunks=summary["chunks"],
            tokens=summary["tokens"],
            outcome=counts,
            progress=1.0,
            summary=summary,
        )

    def _stopped(self, job: Job, error: Exception) -> None:
        if job.cancel_requested:
            self._remove_upload(job)  # before the status: whoever waits for it sees the file gone
            # the chunks were rolled back; `progress` stays the share that had been reached
            self._update(job, status="cancelled", error="cancelled", chunks=0, eta_seconds=None)
        elif self._closing.is_set():
            # a shutdown, not the user: keep it active in the job store so the next start resumes it
            with self._lock:
                job.status, job.progress, job.chunks = "queued", 0.0, 0
                job.error = "interrupted by a server shutdown; resumes on the next start"
            self._save(job)
        else:
            self._update(job, status="failed", error=f"stopped: {error}")

    def close(self) -> None:
        """Stop: queued jobs stay queued (persisted, resumed on the next start), running jobs stop
        at their next batch and roll back; returns once the workers are idle."""
        self._closing.set()
        with self._lock:
            for event in self._stop_events.values():
                event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._store is not None:
            self._store.close()
            self._store = None
