"""Request and response shapes of the OpenAI embeddings API, plus embedhub's optional extensions.

Only the request is a pydantic model (validation, OpenAPI); responses are documented models but
serialised directly with orjson, since building thousands of float objects through pydantic
dominates the cost of a small-model request.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A string, a list of strings, a list of token ids, or a list of token-id lists."
    )
    model: str = Field(description="A served model name or alias (see GET /v1/models).")
    dimensions: int | None = Field(
        default=None, description="Matryoshka output size: the first k components, then L2-normalised."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, as the OpenAI SDK expects."
    )
    user: str | None = Field(default=None, description="End-user id (accepted, not stored).")
    input_type: str | None = Field(
        default=None,
        description="embedhub extension: 'query' (gets the model's instruction) or 'document' (default).",
    )
    instruction: str | None = Field(
        default=None, description="embedhub extension: the query instruction (implies input_type=query)."
    )
    truncate: bool = Field(
        default=False, description="embedhub extension: cut over-long inputs instead of answering 400."
    )


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


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
    random_weights: bool


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TokenizeRequest(BaseModel):
    model: str
    input: str | list[str]
    input_type: str | None = None
    instruction: str | None = None


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
