"""Search with citations, and answers written by a chat endpoint from the collection's passages
(streamed as Server-Sent Events)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from embedhub.engine.hub import HOW_TO_SERVE_A_RERANKER
from embedhub.engine.reranking import ScheduledReranker
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.errors import EmbedhubError
from embedhub.kb.ask import (
    AskEvent,
    DoneEvent,
    ErrorEvent,
    EvidenceEvent,
    answer_events,
    gather_evidence,
)
from embedhub.kb.chat import ChatSettings
from embedhub.kb.collection import Collection
from embedhub.kb.search import Searcher
from embedhub.kb.uploads import relative_path
from embedhub.server.deps import AUTH, ReadyHubDep, SettingsDep, Viewable
from embedhub.server.errors import ERRORS_DOC, ApiError
from embedhub.server.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from embedhub.server.streaming import pumped, sse

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


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


def _searcher(hub, collection: Collection, mode: str, rerank: bool) -> Searcher:
    """A searcher on the served models: the query's forward pass goes through the model's queue
    and cache (429 when it is full), the reranker's through its own (400 when none is loaded)."""
    encoder = None if mode == "lexical" else ScheduledEncoder(hub.get(collection.config.model))
    return Searcher(collection, encoder, _served_reranker(hub) if rerank else None)


@router.post("/collections/{name}/search", response_model=SearchResponse)
async def search(name: str, body: SearchRequest, allowed: Viewable, hub: ReadyHubDep) -> dict:
    collection = allowed.collection
    searcher = _searcher(hub, collection, body.mode, body.rerank)
    results = await asyncio.to_thread(searcher.find, body.options())
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
async def ask(
    name: str, body: AskRequest, request: Request, allowed: Viewable, hub: ReadyHubDep, settings: SettingsDep
):
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
    searcher = _searcher(hub, collection, body.mode, body.rerank)
    options = body.options()
    retrieval = await asyncio.to_thread(gather_evidence, searcher, options)
    events = answer_events(options, retrieval, chat=ChatSettings.from_settings(settings))
    if not body.stream:
        answer = None
        async with aclosing(pumped(events, request, "ask")) as stream:
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
            async with aclosing(pumped(events, request, "ask")) as answer:
                async for event in answer:
                    yield sse(event.name, _event_data(event, collection))
        except EmbedhubError as error:
            yield sse("error", {"message": str(error), "code": getattr(error, "code", "error")})
        except Exception:
            logger.exception("answer stream of collection %s failed", name)
            yield sse("error", {"message": "internal error; see the server log", "code": "internal"})

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
