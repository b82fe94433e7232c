"""OpenAI-compatible routes: POST /v1/embeddings, GET /v1/models."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

import numpy as np
import orjson
from fastapi import APIRouter
from starlette.responses import Response

from embedhub.config import Settings
from embedhub.engine.hub import ModelHub
from embedhub.engine.service import EmbeddingService
from embedhub.errors import InputTooLongError, InvalidInputError
from embedhub.models.spec import InputKind
from embedhub.server.deps import AUTH, HubDep, MetricsDep, ReadyHubDep, SettingsDep
from embedhub.server.errors import ApiError
from embedhub.server.schemas import EmbeddingRequest, EmbeddingResponse, ErrorResponse, ModelCard, ModelList

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["OpenAI-compatible"])
STARTED = int(time.time())
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 422, 429, 503)}
#: How an HTTP client asks for truncation: the only options that exist at this entry point.
HTTP_TRUNCATE_HINT = (
    'shorten or split it, or ask for truncation: "truncate": true in the request, or start the '
    "server with `embedhub serve --truncate` (the default) and omit the field"
)
TRUNCATED_HEADER = "X-Embedhub-Truncated-Inputs"
TOKEN_IDS_REFUSED = (
    "token-id input is refused by this server: the ids are read in the served model's own "
    "vocabulary, and ids from another tokenizer (tiktoken's cl100k, which LangChain's "
    "OpenAIEmbeddings sends by default) give wrong vectors without any error. Send text instead "
    "(LangChain: OpenAIEmbeddings(..., check_embedding_ctx_length=False)); if your client tokenises "
    "with this model's own tokenizer, start the server with `embedhub serve --accept-token-ids` "
    "(EMBEDHUB_ACCEPT_TOKEN_IDS=1)"
)


def check_untruncated_size(
    texts: Sequence[str], truncate: bool, settings: Settings, field: str = "input"
) -> None:
    """Truncation off: a text longer than `max_input_chars` answers 413 before it is tokenised
    (tokenising megabytes takes seconds only to refuse them). With truncation on only the part the
    model's limit can use is tokenised (models/base.py), at most `max_input_chars` of it: a longer
    run without whitespace past the cut answers 413 from the encoder (InputTooLargeError)."""
    if truncate:
        return
    for index, text in enumerate(texts):
        if len(text) > settings.max_input_chars:
            raise ApiError(
                413,
                f"{field} {index} has {len(text):,} characters, more than the limit of "
                f"{settings.max_input_chars:,} for a text that is not truncated; split it into smaller "
                'inputs, or ask for truncation ("truncate": true in the request, or start the server '
                "with `embedhub serve --truncate`, the default) to embed the part the model's token "
                "limit holds. The limit is the server's EMBEDHUB_MAX_INPUT_CHARS",
                "invalid_request_error",
                "input_too_large",
                field,
            )


def resolve_model(hub: ModelHub, name: str) -> tuple[EmbeddingService, InputKind | None]:
    """A served model and the input type its request name asks for: `NAME:query` and
    `NAME:document` work for every served name and alias, so clients that cannot send
    `input_type` (the OpenAI SDK, LangChain, LlamaIndex) still get query instructions. A served
    name that itself ends in such a suffix wins."""
    base, separator, suffix = name.rpartition(":")
    if separator and base and suffix.lower() in {kind.value for kind in InputKind}:
        try:
            return hub.get(name), None
        except LookupError:
            return hub.get(base), InputKind(suffix.lower())
    return hub.get(name), None


def request_kind(
    model_kind: InputKind | None, input_type: str | None, instruction: str | None, model: str
) -> InputKind:
    """The input type from the model suffix, `input_type` and `instruction`, which must agree."""
    kind = InputKind.parse(input_type) if input_type is not None else None
    if model_kind is not None and kind is not None and kind is not model_kind:
        raise InvalidInputError(
            f"model {model!r} embeds as {model_kind.value} but input_type is {kind.value!r}; drop one of them"
        )
    kind = kind or model_kind
    if instruction is not None:
        if kind is InputKind.DOCUMENT:
            raise InvalidInputError(
                "an instruction applies to queries only; documents are embedded without one"
            )
        return InputKind.QUERY
    return kind or InputKind.DOCUMENT


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
    service, model_kind = resolve_model(hub, body.model)
    texts, token_lists = _split_input(body.input)
    if token_lists is not None and not settings.accept_token_ids:
        raise ApiError(400, TOKEN_IDS_REFUSED, "invalid_request_error", "token_ids_not_accepted", "input")
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
    kind = request_kind(model_kind, body.input_type, body.instruction, body.model)
    truncate = settings.truncate if body.truncate is None else body.truncate
    check_untruncated_size(texts or (), truncate, settings)
    try:
        if texts is not None:
            result = await service.embed_texts(
                texts, kind=kind, instruction=body.instruction, dimensions=body.dimensions, truncate=truncate
            )
        else:
            if kind is InputKind.QUERY:
                raise InvalidInputError(
                    "token-id input is embedded as given; put the instruction in the tokens or send text"
                )
            result = await service.embed_token_ids(token_lists, dimensions=body.dimensions, truncate=truncate)
    except InputTooLongError as error:
        raise error.with_hint(HTTP_TRUNCATE_HINT) from None
    metrics.tokens.labels(service.spec.name).inc(result.prompt_tokens)
    metrics.inputs.labels(service.spec.name).inc(count)
    if result.truncated_inputs:
        metrics.truncated_inputs.labels(service.spec.name).inc(result.truncated_inputs)
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
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "total_tokens": result.prompt_tokens,
            "truncated_inputs": result.truncated_inputs,
        },
    }
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers={TRUNCATED_HEADER: str(result.truncated_inputs)},
    )


def model_card(hub: HubDep, name: str) -> ModelCard:
    spec = hub.services[name].spec
    mrl = spec.mrl_sizes if spec.supports_mrl else None
    return ModelCard(
        id=name,
        created=STARTED,
        owned_by="embedhub",
        dimensions=spec.dimensions,
        max_tokens=hub.services[name].max_input_tokens,
        mrl_dimensions=mrl,
        instruction_aware=spec.supports_instructions,
        aliases=hub.aliases_of(name),
        input_type_models={kind.value: f"{name}:{kind.value}" for kind in InputKind},
        random_weights=spec.random_weights,
        backend=hub.services[name].encoder.backend,
        backend_reason=getattr(hub.services[name].encoder, "backend_reason", ""),
    )


def reranker_card(hub: ModelHub) -> ModelCard:
    service = hub.get_reranker()
    spec = service.spec
    return ModelCard(
        id=spec.name,
        created=STARTED,
        owned_by="embedhub",
        type="reranker",
        dimensions=None,
        max_tokens=service.max_input_tokens,
        mrl_dimensions=None,
        instruction_aware=spec.supports_instructions,
        aliases=hub.reranker_aliases(),
        input_type_models={},
        random_weights=spec.random_weights,
        backend=service.reranker.backend,
    )


@router.get("/models", response_model=ModelList, responses=ERRORS)
async def list_models(hub: HubDep) -> ModelList:
    """The served models (those still loading are not listed yet), then the reranker, if any
    (`type: reranker`). One entry per model: the `NAME:query` / `NAME:document` request names are
    shown in each card's `input_type_models`, not as entries of their own, so clients that list
    models never see one model three times."""
    cards = [model_card(hub, name) for name in hub.names()]
    if hub.reranker is not None:
        cards.append(reranker_card(hub))
    return ModelList(data=cards)


@router.get("/models/{model_id:path}", response_model=ModelCard, responses=ERRORS)
async def get_model(model_id: str, hub: HubDep) -> ModelCard:
    if hub.reranker is not None and model_id.lower() in {hub.reranker.name.lower(), *hub.reranker_aliases()}:
        return reranker_card(hub)
    return model_card(hub, resolve_model(hub, model_id)[0].spec.name)
