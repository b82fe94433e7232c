"""Uploads: files stored in the collection and queued as ingestion jobs, and the formats the
loaders read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from embedhub.errors import EmbedhubError
from embedhub.kb.loaders import LOADERS, check_content
from embedhub.kb.uploads import OnConflict, UploadConflictError, safe_relative_path, store_upload
from embedhub.server.deps import AUTH, Editable, GuardDep, JobsDep, ReadyHubDep
from embedhub.server.errors import ERRORS_DOC, ApiError, status_of
from embedhub.server.schemas import LoaderList, UploadResult

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


@router.post("/collections/{name}/files", status_code=202, response_model=UploadResult)
async def upload_files(
    name: str,
    allowed: Editable,
    guard: GuardDep,
    jobs: JobsDep,
    hub: ReadyHubDep,
    files: Annotated[
        list[UploadFile],
        File(description="One or more documents; the filename may be a relative path (folder uploads)."),
    ],
    on_conflict: Annotated[
        OnConflict,
        Form(
            description="When the path already holds different content: keep both (`name (2).ext`), "
            "replace it, or reject the file (409)."
        ),
    ] = "keep_both",
) -> dict:
    """Store the files under the collection's uploads/ folder and queue one ingestion job per file.

    Each accepted entry says where the file went: `stored_as` (relative path), `renamed_from`
    (set when a different document already had that path), `replaced`, `identical` (same content
    as the document already there: no duplicate)."""
    collection = allowed.collection
    hub.get(collection.config.model)  # 404 now if the collection's model is not served
    uploads = collection.folder / "uploads"
    accepted, rejected = [], []
    for upload in files:
        relative = safe_relative_path(upload.filename)
        data = await upload.read()
        try:
            check_content(Path(relative.rsplit("/", 1)[-1]), data)
            outcome = store_upload(uploads, relative, data, on_conflict)
        except EmbedhubError as error:
            rejected.append({"filename": upload.filename, "error": str(error), "status": status_of(error)})
            # kept until dismissed (GET/DELETE .../failures): the browser tab may be long gone
            status = "skipped" if isinstance(error, UploadConflictError) else "failed"
            collection.manifest.record_problem(
                str(uploads / relative), relative, status, str(error), "upload"
            )
            continue
        job = jobs.submit(name, uploads / outcome["stored_as"], outcome["stored_as"])
        accepted.append({**job.to_dict(), "filename": upload.filename, **outcome})
    if not accepted and rejected:
        first = rejected[0]
        kind = "conflict_error" if first["status"] == 409 else "invalid_request_error"
        raise ApiError(first["status"], "; ".join(r["error"] for r in rejected), kind, "upload_rejected")
    if accepted:
        stored = ", ".join(item["stored_as"] for item in accepted)
        guard.record(allowed.principal, "upload", name, stored[:2000])
    return {"jobs": accepted, "rejected": rejected}


@router.get("/loaders", response_model=LoaderList)
async def loaders() -> dict:
    return {"data": [{"name": l.name, "extensions": list(l.extensions)} for l in LOADERS.values()]}  # noqa: E741
