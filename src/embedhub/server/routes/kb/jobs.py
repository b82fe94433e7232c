"""Ingestion jobs: list, read, cancel and retry them, and their changes as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from embedhub.accounts.roles import Need
from embedhub.kb.collection import CollectionNotFoundError
from embedhub.kb.jobs import JobError
from embedhub.server.deps import AUTH, GuardDep, JobsDep, PrincipalDep, Viewable
from embedhub.server.errors import ERRORS_DOC
from embedhub.server.schemas import JobInfo, JobList
from embedhub.server.streaming import server_stopping

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


@router.get("/collections/{name}/jobs", response_model=JobList)
async def list_jobs(name: str, allowed: Viewable, jobs: JobsDep) -> dict:
    return {"data": [job.to_dict() for job in jobs.list(name)]}


@router.get("/jobs/{job_id}", response_model=JobInfo)
async def get_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    return _job(jobs, guard, principal, job_id, Need.VIEW).to_dict()


@router.post("/jobs/{job_id}/cancel", response_model=JobInfo)
async def cancel_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    """Cancel a queued or running job. A running one stops at its next batch and rolls back; the
    answer comes once it has (or after 10 s, with `cancel_requested` true and the job still
    active: it then ends as cancelled shortly)."""
    _job(jobs, guard, principal, job_id, Need.EDIT)
    job = jobs.cancel(job_id)
    await asyncio.to_thread(jobs.wait_finished, [job.id], 10.0)
    return job.to_dict()


@router.post("/jobs/{job_id}/retry", response_model=JobInfo)
async def retry_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    _job(jobs, guard, principal, job_id, Need.EDIT)
    return jobs.retry(job_id).to_dict()


def _job(jobs, guard, principal, job_id: str, need: Need):
    """The job, if the caller may `need` its collection; a job of a hidden collection is as
    unknown as a missing job."""
    job = jobs.get(job_id)
    try:
        guard.open(principal, job.collection, need)
    except CollectionNotFoundError:
        raise JobError(f"no job {job_id!r}") from None  # as for a missing job
    return job


@router.get(
    "/collections/{name}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`event: job` messages whose `data` is a job (JobInfo) as JSON; "
            "`: keep-alive` comments every 15 s.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def job_events(name: str, allowed: Viewable, request: Request, jobs: JobsDep) -> StreamingResponse:
    """Server-Sent Events: one `job` event per change of a job of this collection."""

    async def stream():
        sequence = 0
        started = beat = time.monotonic()
        # at most ten minutes per connection (EventSource reconnects); it ends at once when the
        # server shuts down, so an open browser tab never holds up a graceful shutdown
        while time.monotonic() - started < 600:
            for job in jobs.changes_since(sequence, name):
                sequence = max(sequence, job.sequence)
                yield f"event: job\nid: {job.sequence}\ndata: {json.dumps(job.to_dict())}\n\n"
            if server_stopping(request) or await request.is_disconnected():
                return
            await asyncio.sleep(0.1)
            if time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
