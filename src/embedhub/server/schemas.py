"""Request and response shapes of the OpenAI embeddings API, plus embedhub's optional extensions.

Only the request is a pydantic model (validation, OpenAPI); responses are documented models but
serialised directly with orjson, since building thousands of float objects through pydantic
dominates the cost of a small-model request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator


def _encodable(text: str) -> str:
    """JSON may carry lone UTF-16 surrogates ("\\ud800"), which no tokenizer or encoder accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"text is not valid Unicode: a lone surrogate {text[error.start]!r} at character "
            f"{error.start}; send UTF-8 text (surrogates only in valid pairs)"
        ) from None
    return text


#: Text every route accepts: a string that can be encoded as UTF-8.
Text = Annotated[str, AfterValidator(_encodable)]
#: Token ids are integers in JSON, never booleans, floats or numeric strings.
TokenId = StrictInt


_KINDS = {
    bool: ("a boolean", "booleans"),
    str: ("a string", "strings"),
    int: ("an integer", "integers"),
    float: ("a number with a fraction", "numbers with a fraction"),
    list: ("a list", "lists"),
    dict: ("an object", "objects"),
}


def _kind(value: object, plural: bool = False) -> str:
    singular, many = _KINDS.get(type(value), ("a null", "nulls") if value is None else ("a value", "values"))
    return many if plural else singular


def _texts(value: list) -> list:
    for index, item in enumerate(value):
        try:
            _encodable(item)
        except ValueError as error:
            raise ValueError(f"item {index}: {error}") from None
    return value


def check_input_shape(value: object, token_ids: bool = True) -> object:
    """One precise reason for a malformed `input`, instead of a report per union member."""
    forms = (
        "a string, a list of strings, a list of token ids, or a list of token-id lists"
        if token_ids
        else "a string or a list of strings"
    )
    if isinstance(value, str):
        return _encodable(value)
    if not isinstance(value, list):
        raise ValueError(f"input must be {forms}, not {_kind(value)}")
    if all(isinstance(item, str) for item in value):
        return _texts(value)
    if not token_ids:
        bad = next(item for item in value if not isinstance(item, str))
        raise ValueError(f"input must be {forms}, but holds {_kind(bad)} ({bad!r})")
    if all(isinstance(item, list) for item in value):
        for index, ids in enumerate(value):
            bad = next((item for item in ids if isinstance(item, bool) or not isinstance(item, int)), None)
            if bad is not None:
                raise ValueError(
                    f"item {index} must be a list of integer token ids, but holds {_kind(bad)} ({bad!r})"
                )
        return value
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return value
    kinds = sorted({_kind(item, plural=True) for item in value})
    if len(kinds) == 1:
        raise ValueError(f"input must be {forms}, not a list of {kinds[0]}")
    raise ValueError(f"input must be {forms}, not a list mixing {' and '.join(kinds)}")


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    _check_input = field_validator("input", mode="before")(lambda value: check_input_shape(value))

    input: Text | list[Text] | list[TokenId] | list[list[TokenId]] = Field(
        description=(
            "A string, a list of strings, a list of token ids, or a list of token-id lists. Token "
            "ids are refused unless the server runs with --accept-token-ids (EMBEDHUB_ACCEPT_TOKEN_IDS)."
        )
    )
    model: Text = Field(
        description=(
            "A served model name or alias (see GET /v1/models); NAME:query and NAME:document embed "
            "as that input type."
        )
    )
    dimensions: StrictInt | None = Field(
        default=None, description="Matryoshka output size: the first k components, then L2-normalised."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, as the OpenAI SDK expects."
    )
    user: Text | None = Field(default=None, description="End-user id (accepted, not stored).")
    input_type: Text | None = Field(
        default=None,
        description="embedhub extension: 'query' (gets the model's instruction) or 'document' (default).",
    )
    instruction: Text | None = Field(
        default=None, description="embedhub extension: the query instruction (implies input_type=query)."
    )
    truncate: StrictBool | None = Field(
        default=None,
        description=(
            "embedhub extension: true cuts over-long inputs to the model's limit, false answers 400; "
            "omitted, the server's policy applies (embedhub serve --truncate/--no-truncate, on by default)."
        ),
    )


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    truncated_inputs: int = Field(
        default=0, description="embedhub extension: inputs cut to the model's token limit."
    )


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    dimensions: int
    max_tokens: int
    mrl_dimensions: list[int] | None
    instruction_aware: bool
    aliases: list[str]
    input_type_models: dict[str, str] = Field(
        description=(
            "Request names that embed as one input type, for clients that cannot send input_type: "
            '{"query": "NAME:query", "document": "NAME:document"} (any alias works before the colon).'
        )
    )
    random_weights: bool
    backend: str = Field(
        default="torch",
        description="How the model runs here: torch, torch-bf16, torch-int8 or onnx-int8 (EMBEDHUB_BACKEND).",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TokenizeRequest(BaseModel):
    _check_input = field_validator("input", mode="before")(
        lambda value: check_input_shape(value, token_ids=False)
    )

    model: Text
    input: Text | list[Text]
    input_type: Text | None = None
    instruction: Text | None = None
    truncate: StrictBool | None = Field(
        default=None, description="Cut over-long inputs as /v1/embeddings would (default: server policy)."
    )


class TokenizedInput(BaseModel):
    index: int
    ids: list[int]
    tokens: list[str]


class TokenizeResponse(BaseModel):
    model: str
    data: list[TokenizedInput]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --- knowledge base ---------------------------------------------------------------------


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
