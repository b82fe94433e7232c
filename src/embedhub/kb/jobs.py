"""Background ingestion jobs: one job per file, run by a small worker pool, with status
queued -> parsing -> embedding -> done | failed (with the reason) | cancelled, cancellable while
queued, retryable when failed. Observers (the HTTP layer's Server-Sent Events) read `changes`."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from embedhub.errors import EmbedhubError
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import FileOutcome, Ingestor, Progress
from embedhub.models.base import Encoder

ACTIVE = ("queued", "parsing", "embedding")


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
    outcome: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    sequence: int = 0
    attempts: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class _JobProgress(Progress):
    def __init__(self, manager: JobManager, job: Job) -> None:
        self.manager, self.job = manager, job

    def stage(self, path: Path, stage: str) -> None:
        self.manager._update(self.job, status=stage)


class JobManager:
    def __init__(
        self, knowledge_base: KnowledgeBase, encoder_for: Callable[[str], Encoder], workers: int = 1
    ):
        self.knowledge_base = knowledge_base
        self.encoder_for = encoder_for
        self.jobs: dict[str, Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedhub-ingest")
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._changed = threading.Condition(self._lock)
        self._collection_locks: dict[str, threading.Lock] = {}

    @property
    def version(self) -> int:
        """Increases on every job change; observers wait for it to move."""
        return max((job.sequence for job in self.jobs.values()), default=0)

    def submit(self, collection: str, path: Path, name: str | None = None) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], collection=collection, path=str(path), name=name or path.name)
        with self._lock:
            job.sequence = next(self._counter)
            self.jobs[job.id] = job
            self._changed.notify_all()
        self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobError(f"no job {job_id!r}")
        return job

    def list(self, collection: str | None = None) -> list[Job]:
        jobs = [j for j in self.jobs.values() if collection is None or j.collection == collection]
        return sorted(jobs, key=lambda job: job.created_at)

    def changes_since(self, sequence: int, collection: str | None = None) -> list[Job]:
        return [job for job in self.list(collection) if job.sequence > sequence]

    def wait_for_change(self, sequence: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self.version > sequence, timeout=timeout)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status != "queued":
            raise JobError(f"job {job_id} is {job.status}; only queued jobs can be cancelled")
        self._update(job, status="cancelled")
        return job

    def retry(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status not in ("failed", "cancelled"):
            raise JobError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
        self._update(job, status="queued", error=None)
        self._pool.submit(self._run, job)
        return job

    def _update(self, job: Job, **changes) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)
            job.updated_at = time.time()
            job.sequence = next(self._counter)
            self._changed.notify_all()

    def _run(self, job: Job) -> None:
        if job.status != "queued":
            return  # cancelled while waiting
        self._update(job, attempts=job.attempts + 1)
        lock = self._collection_locks.setdefault(job.collection, threading.Lock())
        try:
            with lock:
                collection = self.knowledge_base.get(job.collection)
                encoder = self.encoder_for(collection.config.model)
                ingestor = Ingestor(collection, encoder, _JobProgress(self, job))
                report = ingestor.ingest([Path(job.path)])
            outcome: FileOutcome = report.outcomes[-1]
        except Exception as error:
            self._update(job, status="failed", error=str(error))
            return
        if outcome.status == "failed":
            self._update(job, status="failed", error=outcome.error, outcome="failed")
        else:
            self._update(
                job, status="done", chunks=outcome.chunks, tokens=outcome.tokens, outcome=outcome.status
            )

    def close(self) -> None:
        with self._lock:
            for job in self.jobs.values():
                if job.status == "queued":
                    job.status = "cancelled"
        self._pool.shutdown(wait=True, cancel_futures=True)
