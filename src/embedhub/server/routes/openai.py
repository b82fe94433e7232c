"""OpenAI-compatible routes: POST /v1/embeddings, GET /v1/models."""

from __future__ import annotations

import base64
import time

import numpy as np
import orjson
from fastapi import APIRouter
from starlette.responses import Response

from embedhub.errors import InvalidInputError
from embedhub.models.spec import InputKind
from embedhub.server.deps import AUTH, HubDep, MetricsDep, ReadyHubDep, SettingsDep
from embedhub.server.errors import ApiError
from embedhub.server.schemas import EmbeddingRequest, EmbeddingResponse, ErrorResponse, ModelCard, ModelList

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["OpenAI-compatible"])
STARTED = int(time.time())
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 422, 429, 503)}


def _split_input(value) -> tuple[list[str] | None, list[list[int]] | None]:
    """The four OpenAI input forms as either texts or token-id lists."""
    if isinstance(value, str):
        return [value], None
    if not value:
        raise InvalidInputError("input is an empty list; send at least one string or token list")
    if all(isinstance(item, str) for item in value):
        return value, None
    if all(isinstance(item, int) for item in value):
        return None, [value]
    return None, value


@router.post("/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
async def create_embeddings(
    body: EmbeddingRequest, hub: ReadyHubDep, settings: SettingsDep, metrics: MetricsDep
):
    """Embed text or token ids, exactly as OpenAI's endpoint does, plus Qwen3 query instructions."""
    service = hub.get(body.model)
    texts, token_lists = _split_input(body.input)
    count = len(texts if texts is not None else token_lists)
    if count > settings.max_items_per_request:
        raise ApiError(
            413,
            f"{count} inputs in one request, more than the limit of {settings.max_items_per_request}; "
            "split the request",
            "invalid_request_error",
            "too_many_inputs",
            "input",
        )
    kind = InputKind.parse(body.input_type) if body.input_type is not None else InputKind.DOCUMENT
    if body.instruction is not None:
        kind = InputKind.QUERY
    if texts is not None:
        result = await service.embed_texts(
            texts, kind=kind, instruction=body.instruction, dimensions=body.dimensions, truncate=body.truncate
        )
    else:
        if kind is InputKind.QUERY:
            raise InvalidInputError(
                "token-id input is embedded as given; put the instruction in the tokens or send text"
            )
        result = await service.embed_token_ids(
            token_lists, dimensions=body.dimensions, truncate=body.truncate
        )
    metrics.tokens.labels(service.spec.name).inc(result.prompt_tokens)
    metrics.inputs.labels(service.spec.name).inc(count)
    if body.encoding_format == "base64":
        vectors = np.ascontiguousarray(result.vectors, dtype="<f4")
        data = [
            {"object": "embedding", "index": i, "embedding": base64.b64encode(row.tobytes()).decode()}
            for i, row in enumerate(vectors)
        ]
    else:
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(result.vectors)]
    payload = {
        "object": "list",
        "data": data,
        "model": service.spec.name,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def model_card(hub: HubDep, name: str) -> ModelCard:
    spec = hub.services[name].spec
    mrl = None
    if spec.supports_mrl:
        sizes = [
            d for d in (32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 4096) if d < spec.dimensions
        ]
        mrl = [d for d in sizes if d >= spec.mrl_min_dimensions] + [spec.dimensions]
    return ModelCard(
        id=name,
        created=STARTED,
        owned_by="embedhub",
        dimensions=spec.dimensions,
        max_tokens=hub.services[name].max_input_tokens,
        mrl_dimensions=mrl,
        instruction_aware=spec.supports_instructions,
        aliases=hub.aliases_of(name),
        random_weights=spec.random_weights,
    )


@router.get("/models", response_model=ModelList, responses=ERRORS)
async def list_models(hub: HubDep) -> ModelList:
    """The served models (those still loading are not listed yet)."""
    return ModelList(data=[model_card(hub, name) for name in hub.names()])


@router.get("/models/{model_id:path}", response_model=ModelCard, responses=ERRORS)
async def get_model(model_id: str, hub: HubDep) -> ModelCard:
    return model_card(hub, hub.get(model_id).spec.name)
