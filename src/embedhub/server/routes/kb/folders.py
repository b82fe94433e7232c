"""Folders on the server (within the allowed roots) queued as ingestion jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter

from embedhub.errors import InvalidInputError
from embedhub.kb.files import gather_files
from embedhub.kb.folders import OUTSIDE_BY_SYMLINK, check_folder, is_within
from embedhub.server.deps import AUTH, Editable, GuardDep, JobsDep, ReadyHubDep, SettingsDep
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.schemas import FolderRequest, FolderResult

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


@router.post("/collections/{name}/folders", status_code=202, response_model=FolderResult)
async def register_folder(
    name: str,
    body: FolderRequest,
    allowed: Editable,
    guard: GuardDep,
    jobs: JobsDep,
    settings: SettingsDep,
    hub: ReadyHubDep,
) -> dict:
    """Queue a job for every supported file under a folder on the server (within the allowed
    roots, see `folder_roots`; files reached through a symlink leading outside are refused)."""
    if not settings.allow_server_folders:
        raise ApiError(
            403, "server-side folders are disabled (EMBEDHUB_ALLOW_SERVER_FOLDERS=0)", "permission_error"
        )
    collection = allowed.collection
    if body.ray is None:
        hub.get(collection.config.model)  # on Ray, the workers load the model
    else:
        from embedhub.kb.distributed import import_ray

        import_ray()  # without Ray installed: a 400 naming the extra
    path = Path(body.path).expanduser()
    roots = check_folder(settings, path, body.path)
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on the server")
    files, unsupported = await asyncio.to_thread(gather_files, [path], body.glob)
    refused = [file for file in files if roots is not None and not is_within(file, roots)]
    skip = set(refused)
    if body.ray is not None:
        job = jobs.submit_folder(name, path.resolve(), ray=body.ray, glob=body.glob, exclude=refused)
        submitted = [job.to_dict()]
        guard.record(allowed.principal, "add_folder", name, f"{path} (on Ray)")
    else:
        submitted = [jobs.submit(name, file).to_dict() for file in files if file not in skip]
        guard.record(allowed.principal, "add_folder", name, f"{path} ({len(submitted)} files)")
    return {
        "jobs": submitted,
        "unsupported": [str(p) for p in unsupported],
        "refused": [{"path": str(p), "error": OUTSIDE_BY_SYMLINK} for p in refused],
    }
