"""Documents of a collection: list, read (with chunks), delete, the original file, PDF page images."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from embedhub.errors import InvalidInputError
from embedhub.kb.folders import check_servable
from embedhub.kb.ingest import remove_documents
from embedhub.kb.loaders.image import render_frame
from embedhub.kb.loaders.pdf import render_page
from embedhub.kb.uploads import relative_path, remove_uploaded_copy
from embedhub.server.deps import AUTH, Allowed, Editable, GuardDep, SettingsDep, Viewable
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.schemas import DocumentDeleted, DocumentDetail, DocumentList

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


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
    """A PDF page rendered as PNG, or a frame of an image document (physical page number, 1-based)."""
    collection, record = _document(allowed, name, doc_id)
    check_servable(settings, collection, Path(record.path))
    if record.file_type not in ("pdf", "image"):
        raise InvalidInputError("page images exist for PDF and image documents only")
    if not 1 <= page <= (record.pages or 0):
        raise InvalidInputError(f"page {page} is outside 1..{record.pages}")
    render = render_page if record.file_type == "pdf" else render_frame
    return Response(await asyncio.to_thread(render, Path(record.path), page), media_type="image/png")
