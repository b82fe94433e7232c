"""Knowledge-base REST API: collections, uploads and folders as background jobs (with
Server-Sent Events), documents (file, page images, chunks), search with citations, and answers
written by a chat endpoint from the collection's passages (streamed as Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import FileResponse, Response, StreamingResponse

from embedhub.engine.hub import HOW_TO_SERVE_A_RERANKER
from embedhub.engine.queue import QueueStopped
from embedhub.engine.reranking import ScheduledReranker
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.errors import EmbedhubError, InvalidInputError
from embedhub.kb.ask import (
    AskEvent,
    ChatSettings,
    DoneEvent,
    ErrorEvent,
    EvidenceEvent,
    answer_events,
    gather_evidence,
)
from embedhub.kb.collection import Collection, CollectionNotFoundError
from embedhub.kb.folders import OUTSIDE_BY_SYMLINK, check_folder, check_servable, is_within
from embedhub.kb.ingest import gather_files, remove_documents
from embedhub.kb.jobs import JobError
from embedhub.kb.loaders import LOADERS, check_content
from embedhub.kb.loaders.pdf import render_page
from embedhub.kb.search import Searcher
from embedhub.kb.uploads import (
    OnConflict,
    relative_path,
    remove_uploaded_copy,
    safe_relative_path,
    store_upload,
)
from embedhub.server.deps import (
    AUTH,
    Allowed,
    Editable,
    GuardDep,
    JobsDep,
    KnowledgeBaseDep,
    Manageable,
    PrincipalDep,
    ReadyHubDep,
    SettingsDep,
    Viewable,
)
from embedhub.server.errors import ERRORS_DOC, ApiError, status_of
from embedhub.server.schemas import (
    AskRequest,
    AskResponse,
    CollectionAccessInfo,
    CollectionCreate,
    CollectionDropped,
    CollectionInfo,
    CollectionList,
    DocumentDeleted,
    DocumentDetail,
    DocumentList,
    FolderRequest,
    FolderResult,
    JobInfo,
    JobList,
    LoaderList,
    SearchRequest,
    SearchResponse,
    ShareRequest,
    UploadResult,
)

logger = logging.getLogger(__name__)
NETWORK_SCHEMES = ("http://", "https://", "tcp://", "grpc://")
router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


def _info(guard, allowed: Allowed) -> dict:
    """A collection's info with its owner and the caller's access level."""
    access = guard.describe(allowed.principal, allowed.collection, allowed.level)
    return {**allowed.collection.info(), "owner": access["owner"], "you": allowed.level}


@router.get("/collections", response_model=CollectionList)
async def list_collections(guard: GuardDep, principal: PrincipalDep) -> dict:
    """The collections the caller may see (accounts off: all)."""
    visible = guard.visible(principal)
    return {"data": [_info(guard, Allowed(collection, level, principal)) for collection, level in visible]}


@router.post("/collections", status_code=201, response_model=CollectionInfo)
async def create_collection(body: CollectionCreate, kb: KnowledgeBaseDep, hub: ReadyHubDep, guard: GuardDep,
                            principal: PrincipalDep) -> dict:  # fmt: skip
    guard.check_create(principal)
    if body.store_uri is not None and not body.store_uri.startswith(NETWORK_SCHEMES):
        # a file URI would let a client write a Milvus Lite database anywhere on the server's disk
        raise InvalidInputError(
            f"store_uri must be a server address ({', '.join(NETWORK_SCHEMES)}); leave it out for a "
            "Milvus Lite file in the collection folder"
        )
    service = hub.get(body.model) if body.model else hub.services[hub.names()[0]]
    collection = await asyncio.to_thread(
        kb.create,
        body.name,
        service.encoder,
        model_reference=service.spec.name,
        dimensions=body.dimensions,
        instruction=body.instruction,
        lexical_language=body.lexical_language,
        store=body.store,
        store_uri=body.store_uri,
        chunk_tokens=body.chunk_tokens,
        chunk_overlap=body.chunk_overlap,
    )
    guard.created(principal, collection)
    return _info(guard, Allowed(collection, guard.level(principal, collection) or "admin", principal))


@router.get("/collections/{name}", response_model=CollectionInfo)
async def get_collection(name: str, allowed: Viewable, guard: GuardDep) -> dict:
    return _info(guard, allowed)


@router.delete("/collections/{name}", response_model=CollectionDropped)
async def drop_collection(name: str, allowed: Manageable, kb: KnowledgeBaseDep, jobs: JobsDep,
                          guard: GuardDep) -> dict:  # fmt: skip
    """Cancel the collection's jobs (waiting for running ones to roll back), then drop it (its
    owner or an admin)."""
    await asyncio.to_thread(jobs.cancel_collection, name)
    await asyncio.to_thread(kb.drop, name)
    jobs.forget_collection(name)
    guard.dropped(allowed.principal, name)
    return {"dropped": name}


@router.get("/collections/{name}/access", response_model=CollectionAccessInfo)
async def get_access(name: str, allowed: Viewable, guard: GuardDep) -> dict:
    """Who owns the collection, whom it is shared with, and the caller's own level."""
    return guard.describe(allowed.principal, allowed.collection, allowed.level)


@router.put("/collections/{name}/access/shares", response_model=CollectionAccessInfo)
async def put_share(name: str, body: ShareRequest, allowed: Manageable, guard: GuardDep) -> dict:
    """Share the collection with a user or a group as viewer (read, search, ask) or editor (also
    upload and delete documents); sharing again changes the role. Its owner or an admin."""
    return guard.share(allowed.principal, name, body.kind, body.name, body.role)


@router.delete("/collections/{name}/access/shares/{kind}/{member}", response_model=CollectionAccessInfo)
async def delete_share(name: str, kind: str, member: str, allowed: Manageable, guard: GuardDep) -> dict:
    """Stop sharing the collection with a user or group. Its owner or an admin."""
    return guard.unshare(allowed.principal, name, kind, member)


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
        Form(description="When the path already holds different content: keep both (`name (2).ext`), "
             "replace it, or reject the file (409)."),
    ] = "keep_both",
) -> dict:  # fmt: skip
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


@router.post("/collections/{name}/folders", status_code=202, response_model=FolderResult)
async def register_folder(name: str, body: FolderRequest, allowed: Editable, guard: GuardDep, jobs: JobsDep,
                          settings: SettingsDep, hub: ReadyHubDep) -> dict:  # fmt: skip
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


@router.get("/collections/{name}/jobs", response_model=JobList)
async def list_jobs(name: str, allowed: Viewable, jobs: JobsDep) -> dict:
    return {"data": [job.to_dict() for job in jobs.list(name)]}


@router.get("/jobs/{job_id}", response_model=JobInfo)
async def get_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    return _job(jobs, guard, principal, job_id, "view").to_dict()


@router.post("/jobs/{job_id}/cancel", response_model=JobInfo)
async def cancel_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    """Cancel a queued or running job. A running one stops at its next batch and rolls back; the
    answer comes once it has (or after 10 s, with `cancel_requested` true and the job still
    active: it then ends as cancelled shortly)."""
    _job(jobs, guard, principal, job_id, "edit")
    job = jobs.cancel(job_id)
    await asyncio.to_thread(jobs.wait_finished, [job.id], 10.0)
    return job.to_dict()


@router.post("/jobs/{job_id}/retry", response_model=JobInfo)
async def retry_job(job_id: str, jobs: JobsDep, guard: GuardDep, principal: PrincipalDep) -> dict:
    _job(jobs, guard, principal, job_id, "edit")
    return jobs.retry(job_id).to_dict()


def _job(jobs, guard, principal, job_id: str, need: str):
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
            if _server_stopping(request) or await request.is_disconnected():
                return
            await asyncio.sleep(0.1)
            if time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


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


@router.get("/collections/{name}/documents", response_model=DocumentList)
async def list_documents(name: str, allowed: Viewable) -> dict:
    collection = allowed.collection
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


def _document(allowed: Allowed, name: str, doc_id: str):
    collection = allowed.collection
    record = collection.manifest.get(doc_id)
    if record is None:
        raise ApiError(404, f"no document {doc_id!r} in collection {name!r}", "not_found_error")
    return collection, record


@router.get("/collections/{name}/documents/{doc_id}", response_model=DocumentDetail)
async def get_document(name: str, doc_id: str, allowed: Viewable) -> dict:
    collection, record = _document(allowed, name, doc_id)
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


@router.delete("/collections/{name}/documents/{doc_id}", response_model=DocumentDeleted)
async def delete_document(name: str, doc_id: str, allowed: Editable, guard: GuardDep) -> dict:
    collection, record = _document(allowed, name, doc_id)
    await asyncio.to_thread(remove_documents, collection, [doc_id])
    remove_uploaded_copy(collection, record.path)  # an uploaded copy belongs to the collection
    guard.record(allowed.principal, "delete", name, relative_path(collection, record.path))
    return {"deleted": doc_id}


@router.get(
    "/collections/{name}/documents/{doc_id}/file",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The original file, as an attachment (its media type guessed from the name).",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def document_file(name: str, doc_id: str, allowed: Viewable, settings: SettingsDep) -> FileResponse:
    collection, record = _document(allowed, name, doc_id)
    path = Path(record.path)
    check_servable(settings, collection, path)
    if not path.is_file():
        raise ApiError(404, f"the file {path.name} is no longer on the server", "not_found_error")
    return FileResponse(path, filename=path.name)


@router.get(
    "/collections/{name}/documents/{doc_id}/pages/{page}.png",
    response_class=Response,
    responses={
        200: {
            "description": "The page as a PNG image.",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def document_page(
    name: str, doc_id: str, page: int, allowed: Viewable, settings: SettingsDep
) -> Response:
    """A PDF page rendered as PNG (physical page number, 1-based)."""
    collection, record = _document(allowed, name, doc_id)
    check_servable(settings, collection, Path(record.path))
    if record.file_type != "pdf":
        raise InvalidInputError("page images exist for PDF documents only")
    if not 1 <= page <= (record.pages or 0):
        raise InvalidInputError(f"page {page} is outside 1..{record.pages}")
    return Response(await asyncio.to_thread(render_page, Path(record.path), page), media_type="image/png")


def _served_reranker(hub) -> ScheduledReranker:
    """The server's reranker, its passes through its own queue; 400 when none is loaded."""
    if hub.reranker is None:
        raise ApiError(
            400,
            f"rerank was asked for, but this server has no reranker loaded; {HOW_TO_SERVE_A_RERANKER}",
            "invalid_request_error",
            "reranker_not_loaded",
            "rerank",
        )
    return ScheduledReranker(hub.reranker)


@router.post("/collections/{name}/search", response_model=SearchResponse)
async def search(name: str, body: SearchRequest, allowed: Viewable, hub: ReadyHubDep) -> dict:
    collection = allowed.collection
    # the query's forward pass goes through the model's queue and cache (429 when it is full)
    encoder = None if body.mode == "lexical" else ScheduledEncoder(hub.get(collection.config.model))
    reranker = _served_reranker(hub) if body.rerank else None
    options = body.options()
    results = await asyncio.to_thread(Searcher(collection, encoder, reranker).find, options)
    return {
        "results": [
            {**r.to_dict(), "name": Path(r.path).name, "relative_path": relative_path(collection, r.path)}
            for r in results
        ]
    }


def _located(collection: Collection, item: dict) -> dict:
    """A passage or citation with the file name and the path inside the collection the UI shows."""
    return {**item, "name": Path(item["path"]).name, "relative_path": relative_path(collection, item["path"])}


def _event_data(event: AskEvent, collection: Collection) -> dict:
    data = event.data()
    if isinstance(event, EvidenceEvent):
        data["evidence"] = [_located(collection, item) for item in data["evidence"]]
    elif isinstance(event, DoneEvent):
        data["citations"] = [_located(collection, item) for item in data["citations"]]
    return data


async def _pumped(events: Iterator[AskEvent], request: Request) -> AsyncIterator[AskEvent]:
    """The answer's events, produced on a thread of their own: the chat endpoint may keep a stream
    waiting for minutes, which must hold neither the event loop nor the shared thread pool. Stops
    (closing the chat stream) when the client goes or the server shuts down."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    finished = object()

    def put(item) -> None:
        with suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        try:
            for event in events:
                put(event)
                if stop.is_set():
                    break
        except Exception as error:  # reaches the client as an error event, never a dropped stream
            put(error)
        finally:
            with suppress(Exception):
                events.close()  # type: ignore[attr-defined]
            put(finished)

    threading.Thread(target=pump, name="ask", daemon=True).start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                if _server_stopping(request):
                    raise QueueStopped("the server is shutting down; ask again once it is back") from None
                continue
            if item is finished:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()


def _sse(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post(
    "/collections/{name}/ask",
    response_model=AskResponse,
    responses={
        200: {
            "description": "With `stream` true (the default), Server-Sent Events: `evidence` "
            "({retrieval_query, evidence: [EvidenceItem]}), then `token` ({text}) for each piece of "
            "the answer, then `done` (AskResponse without `evidence`) or `error` ({message, code}). "
            "With `stream` false, one AskResponse.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        502: {
            "description": "OpenAI-format error: the chat endpoint is unreachable or failed (stream false)"
        },
        504: {"description": "OpenAI-format error: the chat endpoint timed out (stream false)"},
    },
)
async def ask(name: str, body: AskRequest, request: Request, allowed: Viewable, hub: ReadyHubDep,
              settings: SettingsDep):  # fmt: skip
    """Answer a question from the collection's passages, citing them as [n].

    The passages are retrieved first (hybrid search by default; for a follow-up, with the earlier
    questions of `history`; with `rerank`, reordered by the server's reranker), numbered [1]..[k]
    and sent with the question and `history` to the chat endpoint the server is configured with
    (EMBEDHUB_CHAT_URL, EMBEDHUB_CHAT_MODEL, EMBEDHUB_CHAT_API_KEY). Without one, the answer is
    empty, `status` is `no_chat`, `message` says how to configure one, and the evidence carries its
    best sentences highlighted.

    Streamed (`stream` true, the default) as Server-Sent Events, in this order:
    - `evidence`: `{"retrieval_query", "evidence": [...]}`, every passage sent, numbered;
    - `token`: `{"text"}`, a piece of the answer as the chat endpoint writes it (zero or more);
    - `done`: `{"question", "answer", "citations", "status", "message", "model", "retrieval_query"}`
      (citations: the [n] the answer used, each with the passage's file, pages, heading and chunk);
    - `error`: `{"message", "code"}` instead of `done` when the chat endpoint is unreachable
      (`chat_unreachable`), too slow (`chat_timeout`) or answers an error or a malformed stream
      (`chat_error`). The HTTP status is 200 once the stream started.

    With `stream` false: one JSON AskResponse, or the chat endpoint's failure as 502 (504 for a
    timeout). An unknown collection, an invalid request or a busy model fail before either, with
    their usual statuses."""
    collection = allowed.collection
    encoder = None if body.mode == "lexical" else ScheduledEncoder(hub.get(collection.config.model))
    reranker = _served_reranker(hub) if body.rerank else None
    options = body.options()
    retrieval = await asyncio.to_thread(gather_evidence, Searcher(collection, encoder, reranker), options)
    events = answer_events(options, retrieval, chat=ChatSettings.from_settings(settings))
    if not body.stream:
        answer = None
        async with aclosing(_pumped(events, request)) as stream:
            async for event in stream:
                if isinstance(event, ErrorEvent):
                    raise event.error
                if isinstance(event, DoneEvent):
                    answer = event.answer
        if answer is None:
            raise EmbedhubError("the answer ended early; ask again")
        result = answer.to_dict()
        result["evidence"] = [_located(collection, item) for item in result["evidence"]]
        result["citations"] = [_located(collection, item) for item in result["citations"]]
        return result

    async def stream():
        try:
            async with aclosing(_pumped(events, request)) as pumped:
                async for event in pumped:
                    yield _sse(event.name, _event_data(event, collection))
        except EmbedhubError as error:
            yield _sse("error", {"message": str(error), "code": getattr(error, "code", "error")})
        except Exception:
            logger.exception("answer stream of collection %s failed", name)
            yield _sse("error", {"message": "internal error; see the server log", "code": "internal"})

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/loaders", response_model=LoaderList)
async def loaders() -> dict:
    return {"data": [{"name": l.name, "extensions": list(l.extensions)} for l in LOADERS.values()]}  # noqa: E741
