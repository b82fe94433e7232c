"""A collection's kept failures: files that failed or were skipped (at upload or while ingesting),
with the reason, until someone who may edit the collection dismisses them."""

from __future__ import annotations

from fastapi import APIRouter

from embedhub.server.deps import AUTH, Editable, GuardDep, Viewable
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.schemas import FailureList, FailuresDismissed

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


@router.get("/collections/{name}/failures", response_model=FailureList)
async def list_failures(name: str, allowed: Viewable) -> dict:
    """Files that failed or were skipped, oldest first: kept through restarts until dismissed (or
    until the same path is ingested after all)."""
    return {"data": [failure.to_dict() for failure in allowed.collection.manifest.failures()]}


@router.delete("/collections/{name}/failures", response_model=FailuresDismissed)
async def dismiss_all_failures(name: str, allowed: Editable, guard: GuardDep) -> dict:
    dismissed = allowed.collection.manifest.dismiss_failures()
    guard.record(allowed.principal, "dismiss_failures", name, f"{dismissed} failure(s)")
    return {"dismissed": dismissed}


@router.delete("/collections/{name}/failures/{failure_id}", response_model=FailuresDismissed)
async def dismiss_failure(name: str, failure_id: str, allowed: Editable, guard: GuardDep) -> dict:
    manifest = allowed.collection.manifest
    failure = next((f for f in manifest.failures() if f.id == failure_id), None)
    if failure is None:
        message = (
            f"collection {name!r} has no failure {failure_id!r} (dismissed already?); "
            "GET .../failures lists them"
        )
        raise ApiError(404, message, "not_found_error", "failure_not_found")
    dismissed = manifest.dismiss_failures([failure.path])
    guard.record(allowed.principal, "dismiss_failures", name, failure.name[:2000])
    return {"dismissed": dismissed}
