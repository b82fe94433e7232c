"""Knowledge-base REST API: collections, uploads and folders as background jobs (with
Server-Sent Events), documents (file, page images, chunks) and search with citations."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import time
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.responses import FileResponse, Response, StreamingResponse

from embedhub.config import Settings
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.errors import InvalidInputError
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import gather_files, remove_documents
from embedhub.kb.jobs import JobManager
from embedhub.kb.loaders import LOADERS, detect_by_content, loader_for, supported_extensions
from embedhub.kb.search import Searcher
from embedhub.kb.store import SearchFilter
from embedhub.server.deps import AUTH, ReadyHubDep, SettingsDep
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.security import is_loopback

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


def get_knowledge_base(request: Request) -> KnowledgeBase:
    return request.app.state.knowledge_base


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]


class CollectionCreate(BaseModel):
    name: str = Field(description="1-64 letters, digits, '.', '_' or '-'.")
    model: str | None = Field(default=None, description="A served model (default: the first one).")
    dimensions: int | None = Field(default=None, description="MRL dimensions to store.")
    instruction: str | None = Field(default=None, description="Query instruction (instruction-aware models).")
    chunk_tokens: int = Field(default=400, ge=16, le=8192)
    chunk_overlap: int = Field(default=48, ge=0, le=1024)


class FolderRequest(BaseModel):
    path: str = Field(description="A folder (or file) on the server's disk.")
    glob: str | None = None


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=10, ge=1, le=200)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    fusion: Literal["rrf", "weighted"] = "rrf"
    path_glob: str | None = None
    file_types: list[str] = Field(default_factory=list)
    page_min: int | None = Field(default=None, ge=1)
    page_max: int | None = Field(default=None, ge=1)


@router.get("/collections")
async def list_collections(kb: KnowledgeBaseDep) -> dict:
    return {"data": [kb.get(name).info() for name in kb.names()]}


@router.post("/collections", status_code=201)
async def create_collection(body: CollectionCreate, kb: KnowledgeBaseDep, hub: ReadyHubDep) -> dict:
    service = hub.get(body.model) if body.model else hub.services[hub.names()[0]]
    collection = await asyncio.to_thread(
        kb.create,
        body.name,
        service.encoder,
        model_reference=service.spec.name,
        dimensions=body.dimensions,
        instruction=body.instruction,
        chunk_tokens=body.chunk_tokens,
        chunk_overlap=body.chunk_overlap,
    )
    return collection.info()


@router.get("/collections/{name}")
async def get_collection(name: str, kb: KnowledgeBaseDep) -> dict:
    return kb.get(name).info()


@router.delete("/collections/{name}")
async def drop_collection(name: str, kb: KnowledgeBaseDep, jobs: JobsDep) -> dict:
    """Cancel the collection's jobs (waiting for running ones to roll back), then drop it."""
    kb.get(name)
    await asyncio.to_thread(jobs.cancel_collection, name)
    await asyncio.to_thread(kb.drop, name)
    jobs.forget_collection(name)
    return {"dropped": name}


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)
_DRIVE = re.compile(r"^[A-Za-z]:$")
MAX_PART_BYTES = 200  # file systems allow 255 bytes per name; room for " (n)" and the ".part" copy
MAX_DEPTH = 8  # folders kept above the file name


def _bounded(part: str, limit: int = MAX_PART_BYTES) -> str:
    """Cut a name to `limit` UTF-8 bytes, keeping its extension."""
    if len(part.encode()) <= limit:
        return part
    stem, dot, suffix = part.rpartition(".")
    if not dot or len(suffix.encode()) > 16:
        stem, suffix = part, ""
    room = limit - len(suffix.encode()) - (1 if suffix else 0)
    stem = stem.encode()[:room].decode(errors="ignore").rstrip(" .")
    return f"{stem}.{suffix}" if suffix else stem


def safe_filename(name: str | None) -> str:
    """A plain file name: no directories, no traversal, no control characters, bounded length."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    return _safe_part(base) or "upload.txt"


def _safe_part(part: str) -> str:
    part = _UNSAFE.sub("_", "".join(ch for ch in part if ch.isprintable())).strip(" .")
    return _bounded(part)


def safe_relative_path(name: str | None) -> str:
    """The relative path of an upload (a folder upload sends `projA/README.md`), made safe: each
    part sanitised like `safe_filename`, `.`/`..`/empty parts and drive letters dropped (so never
    absolute, never outside uploads/), at most MAX_DEPTH folders (the nearest ones) above the name."""
    raw = unicodedata.normalize("NFC", (name or "").replace("\\", "/"))
    parts = [part for part in raw.split("/") if part.strip() not in ("", ".", "..")]
    if parts and _DRIVE.match(parts[0]):
        parts = parts[1:]
    parts = [safe for safe in (_safe_part(part) for part in parts) if safe]
    if not parts:
        return "upload.txt"
    return "/".join(parts[-(MAX_DEPTH + 1) :])


def _numbered(relative: str, number: int) -> str:
    """`docs/README.md` -> `docs/README (2).md`."""
    folder, _, name = relative.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    label = f" ({number})"
    stem = _bounded(stem, MAX_PART_BYTES - len(label) - len(suffix.encode()) - 1)
    name = f"{stem}{label}.{suffix}" if suffix else f"{stem}{label}"
    return f"{folder}/{name}" if folder else name


OnConflict = Literal["keep_both", "replace", "reject"]


def store_upload(uploads: Path, relative: str, data: bytes, on_conflict: OnConflict) -> dict:
    """Write an upload under `uploads` without ever silently replacing a different document.

    Identical content at the path (or at one of its ` (n)` copies) is the same document; different
    content is kept beside it as `name (2).ext` unless `on_conflict` is `replace` or `reject`.
    Runs without awaiting, so two uploads in this process never interleave between check and write.
    """
    target = uploads / relative
    if not target.resolve().is_relative_to(uploads.resolve()):
        raise InvalidInputError(f"{relative}: the path leaves the uploads folder")
    outcome = {"stored_as": relative, "renamed_from": None, "replaced": False, "identical": False}
    if target.is_file() and on_conflict != "replace":
        for number in range(1, 1000):
            candidate = relative if number == 1 else _numbered(relative, number)
            path = uploads / candidate
            if not path.exists():
                if on_conflict == "reject":
                    raise ApiError(
                        409, f"{relative} already exists with different content; upload it with "
                        "on_conflict=replace to replace it or on_conflict=keep_both to keep both",
                        "conflict_error", "file_exists",
                    )  # fmt: skip
                outcome.update(stored_as=candidate, renamed_from=relative)
                target = path
                break
            if path.is_file() and path.read_bytes() == data:
                outcome.update(stored_as=candidate, identical=True)
                return outcome
        else:
            raise ApiError(409, f"{relative}: too many copies of this name", "conflict_error", "file_exists")
    elif target.is_file():
        outcome["identical"] = target.read_bytes() == data
        outcome["replaced"] = not outcome["identical"]
    if target.exists() and not target.is_file():
        raise ApiError(409, f"{relative}: a folder of that name exists", "conflict_error", "file_exists")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ApiError(409, f"{relative}: a file of that name holds the folder's place", "conflict_error",
                       "file_exists") from error  # fmt: skip
    temporary = target.with_name("." + target.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(target)
    return outcome


def check_content(filename: str, data: bytes) -> None:
    """Type by content, not only by extension (415 with the reason)."""
    loader = loader_for(Path(filename))
    if loader is None:
        raise ApiError(
            415, f"{filename}: unsupported file type; supported: {' '.join(supported_extensions())}",
            "invalid_request_error", "unsupported_file_type",
        )  # fmt: skip
    if not data.strip():
        raise ApiError(400, f"{filename}: the file is empty", "invalid_request_error", "empty_file")
    if not loader.sniff(data):
        actual = detect_by_content(data)
        what = f"looks like {actual.name}" if actual else "is binary data"
        raise ApiError(
            415, f"{filename}: named as {loader.name} but the content {what}", "invalid_request_error",
            "content_mismatch",
        )  # fmt: skip


@router.post("/collections/{name}/files", status_code=202)
async def upload_files(
    name: str,
    kb: KnowledgeBaseDep,
    jobs: JobsDep,
    hub: ReadyHubDep,
    files: Annotated[
        list[UploadFile],
        File(description="One or more documents; the filename may be a relative path (folder uploads)."),
    ],
    on_conflict: Annotated[
        OnConflict,
        Form(description="When the path already holds different content: keep both (`name (2).ext`), "
             "replace it, or reject the file (409)."),
    ] = "keep_both",
) -> dict:  # fmt: skip
    """Store the files under the collection's uploads/ folder and queue one ingestion job per file.

    Each accepted entry says where the file went: `stored_as` (relative path), `renamed_from`
    (set when a different document already had that path), `replaced`, `identical` (same content
    as the document already there: no duplicate)."""
    collection = kb.get(name)
    hub.get(collection.config.model)  # 404 now if the collection's model is not served
    uploads = collection.folder / "uploads"
    accepted, rejected = [], []
    for upload in files:
        relative = safe_relative_path(upload.filename)
        data = await upload.read()
        try:
            check_content(relative.rsplit("/", 1)[-1], data)
            outcome = store_upload(uploads, relative, data, on_conflict)
        except ApiError as error:
            rejected.append({"filename": upload.filename, "error": error.message, "status": error.status})
            continue
        job = jobs.submit(name, uploads / outcome["stored_as"], outcome["stored_as"])
        accepted.append({**job.to_dict(), "filename": upload.filename, **outcome})
    if not accepted and rejected:
        first = rejected[0]
        kind = "conflict_error" if first["status"] == 409 else "invalid_request_error"
        raise ApiError(first["status"], "; ".join(r["error"] for r in rejected), kind, "upload_rejected")
    return {"jobs": accepted, "rejected": rejected}


@router.post("/collections/{name}/folders", status_code=202)
async def register_folder(name: str, body: FolderRequest, kb: KnowledgeBaseDep, jobs: JobsDep,
                          settings: SettingsDep, hub: ReadyHubDep) -> dict:  # fmt: skip
    """Queue a job for every supported file under a folder on the server (within the allowed
    roots, see `folder_roots`; files reached through a symlink leading outside are refused)."""
    if not settings.allow_server_folders:
        raise ApiError(
            403, "server-side folders are disabled (EMBEDHUB_ALLOW_SERVER_FOLDERS=0)", "permission_error"
        )
    collection = kb.get(name)
    hub.get(collection.config.model)
    roots = folder_roots(settings)
    path = Path(body.path).expanduser()
    if roots is not None and not is_within(path, roots):
        raise _forbidden(_outside_roots_message(body.path, roots))
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on the server")
    files, unsupported = await asyncio.to_thread(gather_files, [path], body.glob)
    refused = [file for file in files if roots is not None and not is_within(file, roots)]
    skip = set(refused)
    submitted = [jobs.submit(name, file).to_dict() for file in files if file not in skip]
    return {
        "jobs": submitted,
        "unsupported": [str(p) for p in unsupported],
        "refused": [{"path": str(p), "error": OUTSIDE_BY_SYMLINK} for p in refused],
    }


OUTSIDE_BY_SYMLINK = "a symlink leading outside the allowed folders"


def folder_roots(settings: Settings) -> list[Path] | None:
    """The folders the API may read on the server, resolved; None means any readable folder.

    Default when `folder_roots` is unset: any folder on a loopback bind (only this machine's
    user can reach the API, who can read those files anyway, as with the CLI) and none on any
    other bind (whoever holds a key must not read the server's disk unless a folder is listed)."""
    if settings.folder_roots:
        return [Path(root).expanduser().resolve() for root in settings.folder_roots]
    return None if is_loopback(settings.host) else []


def is_within(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, with `..` and every symlink resolved, is one of the roots or under one."""
    resolved = path.expanduser().resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def _outside_roots_message(path: str, roots: list[Path]) -> str:
    if not roots:
        return (
            "server-side folders are off because the server is bound to a non-loopback address; list "
            "the folders it may read in EMBEDHUB_FOLDER_ROOTS (separated by "
            f"{os.pathsep!r}) and restart it"
        )
    listed = os.pathsep.join(str(root) for root in roots)
    return (
        f"{path} is outside the folders this server may read ({listed}); add its folder to "
        "EMBEDHUB_FOLDER_ROOTS and restart the server"
    )


def _servable(settings: Settings, collection, path: Path) -> None:
    """Files are served from the allowed roots or the collection's own uploads folder only."""
    roots = folder_roots(settings)
    if roots is None:
        return
    if not is_within(path, [*roots, (collection.folder / "uploads").resolve()]):
        raise _forbidden(_outside_roots_message(path.name, roots))


def _forbidden(message: str) -> ApiError:
    return ApiError(403, message, "permission_error", "folder_not_allowed")


@router.get("/collections/{name}/jobs")
async def list_jobs(name: str, jobs: JobsDep) -> dict:
    return {"data": [job.to_dict() for job in jobs.list(name)]}


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, jobs: JobsDep) -> dict:
    return jobs.get(job_id).to_dict()


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, jobs: JobsDep) -> dict:
    """Cancel a queued or running job. A running one stops at its next batch and rolls back; the
    answer comes once it has (or after 10 s, with `cancel_requested` true and the job still
    active: it then ends as cancelled shortly)."""
    job = jobs.cancel(job_id)
    await asyncio.to_thread(jobs.wait_finished, [job.id], 10.0)
    return job.to_dict()


@router.post("/jobs/{job_id}/retry")
async def retry_job(job_id: str, jobs: JobsDep) -> dict:
    return jobs.retry(job_id).to_dict()


@router.get("/collections/{name}/events")
async def job_events(name: str, request: Request, jobs: JobsDep, kb: KnowledgeBaseDep) -> StreamingResponse:
    """Server-Sent Events: one `job` event per change of a job of this collection."""
    kb.get(name)

    async def stream():
        sequence = 0
        started = beat = time.monotonic()
        # at most ten minutes per connection (EventSource reconnects); it ends at once when the
        # server shuts down, so an open browser tab never holds up a graceful shutdown
        while time.monotonic() - started < 600:
            for job in jobs.changes_since(sequence, name):
                sequence = max(sequence, job.sequence)
                yield f"event: job\nid: {job.sequence}\ndata: {json.dumps(job.to_dict())}\n\n"
            if _server_stopping(request) or await request.is_disconnected():
                return
            await asyncio.sleep(0.1)
            if time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def relative_path(collection, path: str) -> str:
    """An uploaded file's path inside uploads/ (`projA/README.md`); other files keep their path."""
    try:
        return Path(path).relative_to(collection.folder / "uploads").as_posix()
    except ValueError:
        return path


def _server_stopping(request: Request) -> bool:
    """Whether the server is shutting down. uvicorn waits for open responses to end before it runs
    the application's shutdown, so a stream cannot wait for the lifespan to tell it; under
    `embedhub serve` uvicorn's SIGTERM/SIGINT handler is its Server's bound `handle_exit`, whose
    Server says `should_exit` as soon as a signal arrived. `app.state.stopping` covers the rest."""
    stopping = getattr(request.app.state, "stopping", None)
    if stopping is not None and stopping.is_set():
        return True
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


@router.get("/collections/{name}/documents")
async def list_documents(name: str, kb: KnowledgeBaseDep) -> dict:
    collection = kb.get(name)
    records = collection.manifest.documents()
    return {
        "data": [
            {
                **record.__dict__,
                "name": Path(record.path).name,
                "relative_path": relative_path(collection, record.path),
            }
            for record in records
        ]
    }


def _document(kb: KnowledgeBase, name: str, doc_id: str):
    collection = kb.get(name)
    record = collection.manifest.get(doc_id)
    if record is None:
        raise ApiError(404, f"no document {doc_id!r} in collection {name!r}", "not_found_error")
    return collection, record


@router.get("/collections/{name}/documents/{doc_id}")
async def get_document(name: str, doc_id: str, kb: KnowledgeBaseDep) -> dict:
    collection, record = _document(kb, name, doc_id)
    rows = await asyncio.to_thread(collection.store.rows_of, doc_id)
    chunks = [
        {
            "id": r.id,
            "index": r.chunk_index,
            "text": r.text,
            "page_start": r.page_start,
            "page_end": r.page_end,
            "heading_path": list(r.heading_path),
            "char_start": r.char_start,
            "char_end": r.char_end,
        }
        for r in rows
        if r.generation == record.generation
    ]
    return {
        **record.__dict__,
        "name": Path(record.path).name,
        "relative_path": relative_path(collection, record.path),
        "chunks": chunks,
    }


@router.delete("/collections/{name}/documents/{doc_id}")
async def delete_document(name: str, doc_id: str, kb: KnowledgeBaseDep) -> dict:
    collection, record = _document(kb, name, doc_id)
    await asyncio.to_thread(remove_documents, collection, [doc_id])
    uploads = (collection.folder / "uploads").resolve()
    path = Path(record.path).resolve()
    if uploads in path.parents:
        path.unlink(missing_ok=True)  # an uploaded copy belongs to the collection
        for folder in path.parents:  # and so do the folders a folder upload made
            if folder == uploads or any(folder.iterdir()):
                break
            folder.rmdir()
    return {"deleted": doc_id}


@router.get("/collections/{name}/documents/{doc_id}/file")
async def document_file(name: str, doc_id: str, kb: KnowledgeBaseDep, settings: SettingsDep) -> FileResponse:
    collection, record = _document(kb, name, doc_id)
    path = Path(record.path)
    _servable(settings, collection, path)
    if not path.is_file():
        raise ApiError(404, f"the file {path.name} is no longer on the server", "not_found_error")
    return FileResponse(path, filename=path.name)


@router.get("/collections/{name}/documents/{doc_id}/pages/{page}.png")
async def document_page(
    name: str, doc_id: str, page: int, kb: KnowledgeBaseDep, settings: SettingsDep
) -> Response:
    """A PDF page rendered as PNG (physical page number, 1-based)."""
    collection, record = _document(kb, name, doc_id)
    _servable(settings, collection, Path(record.path))
    if record.file_type != "pdf":
        raise InvalidInputError("page images exist for PDF documents only")
    if not 1 <= page <= (record.pages or 0):
        raise InvalidInputError(f"page {page} is outside 1..{record.pages}")
    return Response(await asyncio.to_thread(_render_page, Path(record.path), page), media_type="image/png")


def _render_page(path: Path, page: int) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        image = pdf[page - 1].render(scale=1.5).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        pdf.close()


@router.post("/collections/{name}/search")
async def search(name: str, body: SearchRequest, kb: KnowledgeBaseDep, hub: ReadyHubDep) -> dict:
    collection = kb.get(name)
    # the query's forward pass goes through the model's queue and cache (429 when it is full)
    encoder = None if body.mode == "lexical" else ScheduledEncoder(hub.get(collection.config.model))
    where = SearchFilter(body.path_glob, tuple(body.file_types), body.page_min, body.page_max)
    results = await asyncio.to_thread(
        Searcher(collection, encoder).search,
        body.query,
        k=body.k,
        mode=body.mode,
        where=where,
        fusion=body.fusion,
    )
    return {
        "results": [
            {**r.to_dict(), "name": Path(r.path).name, "relative_path": relative_path(collection, r.path)}
            for r in results
        ]
    }


@router.get("/loaders")
async def loaders() -> dict:
    return {"data": [{"name": l.name, "extensions": list(l.extensions)} for l in LOADERS.values()]}  # noqa: E741
