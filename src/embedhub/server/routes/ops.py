"""Operations: /health, /ready, /metrics, and POST /tokenize."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from embedhub.errors import InputTooLongError, InvalidInputError
from embedhub.models.cpu import detect_cpu
from embedhub.server.deps import AUTH, HubDep, MetricsDep, ReadyHubDep, SettingsDep
from embedhub.server.errors import ERRORS_DOC
from embedhub.server.schemas import TokenizedInput, TokenizeRequest, TokenizeResponse

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict:
    """The process is alive and answering."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "models still loading or failed"}})
async def ready(hub: HubDep):
    """Every model is loaded and warmed up."""
    body = {"ready": hub.ready, "models": hub.names()}
    if hub.reranker is not None:
        body["reranker"] = hub.reranker.name
    if hub.load_error is not None:
        body["error"] = str(hub.load_error)
    return JSONResponse(body, status_code=200 if hub.ready else 503)


@router.get("/metrics", dependencies=AUTH)
async def metrics(hub: HubDep, metrics: MetricsDep, settings: SettingsDep) -> Response:
    """Prometheus text format."""
    metrics.ready.set(1 if hub.ready else 0)
    cpu = detect_cpu(settings.cpu_class)
    metrics.cpu.labels(cpu.model, cpu.cpu_class, " ".join(cpu.relevant_flags)).set(1)
    for name, service in hub.services.items():
        metrics.queue_depth.labels(name).set(service.queue.depth)
        metrics.model_backend.labels(name, service.encoder.backend).set(1)
        if service.cache is not None:
            metrics.cache_hits.labels(name).set(service.cache.hits)
            metrics.cache_misses.labels(name).set(service.cache.misses)
            metrics.cache_entries.labels(name).set(len(service.cache))
    if hub.reranker is not None:
        metrics.queue_depth.labels(hub.reranker.name).set(hub.reranker.queue.depth)
        metrics.model_backend.labels(hub.reranker.name, hub.reranker.reranker.backend).set(1)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/info", dependencies=AUTH)
async def info(request: Request, hub: HubDep) -> dict:
    """What the web UI's settings page shows: served models, store, limits (no secrets)."""
    from embedhub import __version__
    from embedhub.server.routes.openai import model_card, reranker_card

    settings = request.app.state.settings
    return {
        "version": __version__,
        "models": [model_card(hub, name).model_dump() for name in hub.names()],
        "reranker": reranker_card(hub).model_dump() if hub.reranker is not None else None,
        "store": "lancedb",
        "home": str(settings.home),
        "collections": len(request.app.state.knowledge_base.names()),
        "auth": bool(settings.api_keys),
        "accounts": settings.accounts_enabled,
        "max_items_per_request": settings.max_items_per_request,
        "max_upload_bytes": settings.max_upload_bytes,
    }


@router.post("/tokenize", response_model=TokenizeResponse, dependencies=AUTH, responses=ERRORS_DOC)
async def tokenize(body: TokenizeRequest, hub: ReadyHubDep, settings: SettingsDep) -> TokenizeResponse:
    """Token ids and strings exactly as the model receives them (instruction, <|endoftext|>, and
    the cut the server's truncation policy makes)."""
    from embedhub.server.routes.openai import (
        HTTP_TRUNCATE_HINT,
        check_untruncated_size,
        request_kind,
        resolve_model,
    )

    service, model_kind = resolve_model(hub, body.model)
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidInputError("input is an empty list; send at least one string")
    if len(texts) > settings.max_items_per_request:
        raise InvalidInputError(
            f"{len(texts)} inputs in one request, more than the limit of "
            f"{settings.max_items_per_request}; split the request"
        )
    kind = request_kind(model_kind, body.input_type, body.instruction, body.model)
    truncate = settings.truncate if body.truncate is None else body.truncate
    check_untruncated_size(texts, truncate, settings)
    encoder = service.encoder
    try:
        ids = await asyncio.to_thread(
            encoder.tokenize,
            texts,
            kind=kind,
            instruction=body.instruction,
            truncate=truncate,
            limit=service.max_input_tokens,
        )
    except InputTooLongError as error:
        raise error.with_hint(HTTP_TRUNCATE_HINT) from None
    return TokenizeResponse(
        model=service.spec.name,
        data=[
            TokenizedInput(index=i, ids=row, tokens=encoder.token_strings(row)) for i, row in enumerate(ids)
        ],
    )
