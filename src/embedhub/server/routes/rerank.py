"""Reranking: POST /v1/rerank (the shape vLLM, Jina and Cohere clients send) and POST /rerank
(text-embeddings-inference's). Both run on the served reranker's request-merging queue, with the
limits, errors, auth and metrics of /v1/embeddings."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from embedhub.engine.reranking import RerankScores, RerankService
from embedhub.errors import InputTooLongError, InvalidInputError
from embedhub.server.deps import AUTH, MetricsDep, ReadyHubDep, SettingsDep
from embedhub.server.errors import ApiError
from embedhub.server.metrics import Metrics
from embedhub.server.routes.openai import ERRORS, HTTP_TRUNCATE_HINT, check_untruncated_size
from embedhub.server.schemas import RerankRequest, RerankResponse, TeiRank, TeiRerankRequest

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["reranking"])
tei_router = APIRouter(dependencies=AUTH, tags=["reranking"])


async def _score(
    service: RerankService,
    query: str,
    documents: list[str],
    *,
    instruction: str | None,
    truncate: bool | None,
    settings,
    metrics: Metrics,
    field: str,
) -> RerankScores:
    if not query.strip():
        raise InvalidInputError("query is empty; send the text the documents are judged against")
    if not documents:
        raise InvalidInputError(f"{field} is an empty list; send at least one document")
    if len(documents) > settings.max_items_per_request:
        raise ApiError(
            413,
            f"{len(documents)} documents in one request, more than the limit of "
            f"{settings.max_items_per_request}; split the request",
            "invalid_request_error",
            "too_many_inputs",
            field,
        )
    cut = settings.truncate if truncate is None else truncate
    check_untruncated_size([query], cut, settings, "query")
    check_untruncated_size(documents, cut, settings, field)
    try:
        result = await service.rerank(query, documents, instruction=instruction, truncate=cut)
    except InputTooLongError as error:
        raise error.with_hint(HTTP_TRUNCATE_HINT) from None
    metrics.tokens.labels(service.name).inc(result.prompt_tokens)
    metrics.inputs.labels(service.name).inc(len(documents))
    metrics.rerank_pairs.labels(service.name).inc(len(documents))
    if result.truncated_inputs:
        metrics.truncated_inputs.labels(service.name).inc(result.truncated_inputs)
    return result


def _ranked(scores, top_n: int | None) -> list[int]:
    """Document indices by score, best first (ties keep request order), the best `top_n`."""
    order = sorted(range(len(scores)), key=lambda index: (-float(scores[index]), index))
    return order[:top_n] if top_n is not None else order


@router.post("/rerank", response_model=RerankResponse, response_model_exclude_none=True, responses=ERRORS)
async def rerank(body: RerankRequest, hub: ReadyHubDep, settings: SettingsDep, metrics: MetricsDep) -> dict:
    """Score documents against a query with the served reranker; results best first."""
    service = hub.get_reranker(body.model)
    texts = [item if isinstance(item, str) else item.text for item in body.documents]
    result = await _score(
        service,
        body.query,
        texts,
        instruction=body.instruction,
        truncate=body.truncate,
        settings=settings,
        metrics=metrics,
        field="documents",
    )
    results = []
    for index in _ranked(result.scores, body.top_n):
        entry = {"index": index, "relevance_score": float(result.scores[index])}
        if body.return_documents:
            entry["document"] = {"text": texts[index]}
        results.append(entry)
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "model": service.name,
        "results": results,
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "total_tokens": result.prompt_tokens,
            "truncated_inputs": result.truncated_inputs,
        },
    }


@tei_router.post("/rerank", response_model=list[TeiRank], response_model_exclude_none=True, responses=ERRORS)
async def rerank_tei(body: TeiRerankRequest, hub: ReadyHubDep, settings: SettingsDep, metrics: MetricsDep):
    """text-embeddings-inference's rerank shape: `[{"index", "score", "text"?}]`, best first."""
    service = hub.get_reranker()
    result = await _score(
        service,
        body.query,
        body.texts,
        instruction=None,
        truncate=body.truncate,
        settings=settings,
        metrics=metrics,
        field="texts",
    )
    return [
        {"index": index, "score": float(result.scores[index])}
        | ({"text": body.texts[index]} if body.return_text else {})
        for index in _ranked(result.scores, None)
    ]
