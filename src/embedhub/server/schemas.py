"""Request and response shapes of the OpenAI embeddings API (with embedhub's optional extensions)
and of the knowledge-base API.

Only the request is a pydantic model (validation, OpenAPI); responses are documented models but
serialised directly with orjson, since building thousands of float objects through pydantic
dominates the cost of a small-model request. The knowledge-base responses (at the end) are the
routes' `response_model`s: small objects, serialised through them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from embedhub.kb.ask import DEFAULT_K, MAX_HISTORY_MESSAGES, MAX_QUESTION_CHARS, AskOptions
from embedhub.kb.ask import MAX_K as MAX_ASK_K
from embedhub.kb.fusion import DENSE_WEIGHT
from embedhub.kb.search import (
    MAX_HTTP_K,
    MAX_PER_DOCUMENT,
    MAX_QUERY_CHARS,
    MAX_RERANK_CANDIDATES,
    SearchOptions,
)
from embedhub.kb.store import SearchFilter


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
    type: Literal["embedding", "reranker"] = Field(
        default="embedding",
        description="embedding (POST /v1/embeddings) or reranker (POST /v1/rerank).",
    )
    dimensions: int | None = Field(description="Native vector size (null for a reranker).")
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
    backend_reason: str = Field(
        default="",
        description="Why that backend serves here: asked for, or auto's measured default for this CPU class.",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class RerankDocument(BaseModel):
    """A document as an object (Cohere / Jina / vLLM clients may send `{"text": ...}`)."""

    model_config = ConfigDict(extra="allow")

    text: Text


class RerankRequest(BaseModel):
    """The request vLLM, Jina and Cohere clients send to /v1/rerank."""

    model_config = ConfigDict(extra="allow")

    model: Text | None = Field(
        default=None, description="The served reranker's name or alias (see GET /v1/models); omitted: it."
    )
    query: Text = Field(description="What the documents are judged against.")
    documents: list[Text | RerankDocument] = Field(description='Strings, or objects with a "text" field.')
    top_n: StrictInt | None = Field(
        default=None, ge=1, description="Return only the best n (default: every document), best first."
    )
    return_documents: StrictBool = Field(
        default=True, description="Include each document's text in its result (as vLLM and Jina do)."
    )
    instruction: Text | None = Field(
        default=None,
        description="Qwen3-Reranker's task instruction (default: the model card's web-search one).",
    )
    truncate: StrictBool | None = Field(
        default=None,
        description="embedhub extension: cut over-long pairs (true) or answer 400 (false); omitted, "
        "the server's policy applies (--truncate/--no-truncate).",
    )


class RerankResultDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="The document's position in the request.")
    relevance_score: float = Field(description="Qwen3-Reranker: P(yes), 0..1; higher is more relevant.")
    document: RerankResultDocument | None = Field(
        default=None, description="Present when return_documents is true."
    )


class RerankUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    truncated_inputs: int = Field(default=0, description="embedhub extension: pairs cut to the token limit.")


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult] = Field(description="Sorted by relevance_score, best first.")
    usage: RerankUsage


class TeiRerankRequest(BaseModel):
    """text-embeddings-inference's POST /rerank."""

    model_config = ConfigDict(extra="allow")

    query: Text
    texts: list[Text]
    return_text: StrictBool = False
    truncate: StrictBool | None = Field(
        default=None, description="Cut over-long pairs; omitted, the server's policy applies."
    )
    raw_scores: StrictBool = Field(
        default=False, description="Accepted for compatibility; scores are always the model's relevance."
    )


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


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
    instruction: str | None = Field(
        default=None,
        description="Query instruction (instruction-aware models): free text, or a task name "
        "(retrieval, code, sts, classification, clustering, bitext) for the model's published one.",
    )
    chunk_tokens: int = Field(default=400, ge=16, le=8192)
    chunk_overlap: int = Field(default=48, ge=0, le=1024)
    lexical_language: str = Field(
        default="english",
        description="Snowball stemmer and stop words of the lexical index (english, french, german, "
        "... or none); Chinese is always segmented into words.",
    )
    store: str = Field(
        default="lancedb",
        description="Vector store: lancedb (embedded, in the collection folder) or milvus.",
    )
    store_uri: str | None = Field(
        default=None,
        description="milvus: the server or cluster (http://host:19530; the server's "
        "EMBEDHUB_MILVUS_TOKEN authenticates); default: a Milvus Lite file in the collection folder.",
    )


class FolderRequest(BaseModel):
    path: str = Field(description="A folder (or file) on the server's disk.")
    glob: str | None = None
    ray: str | None = Field(
        default=None,
        description="Ingest the folder on Ray (the server needs the ray extra): 'auto' (a local Ray "
        "for this job, 127.0.0.1 only), 'HOST:PORT' or 'ray://HOST:PORT'. One job then covers the "
        "whole folder (its progress is the share of files done) instead of one job per file.",
    )


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(default=10, ge=1, le=MAX_HTTP_K)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    fusion: Literal["weighted", "rrf"] = Field(
        default="weighted",
        description="hybrid: weighted sum of normalised scores (default) or reciprocal rank fusion (k=60).",
    )
    dense_weight: float = Field(
        default=DENSE_WEIGHT, ge=0.0, le=1.0, description="Weighted fusion: the dense share."
    )
    per_document: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PER_DOCUMENT,
        description="At most this many chunks of one document (default: any).",
    )
    path_glob: str | None = None
    file_types: list[str] = Field(default_factory=list)
    page_min: int | None = Field(default=None, ge=1)
    page_max: int | None = Field(default=None, ge=1)
    rerank: bool = Field(
        default=False,
        description="Rerank the best fused candidates with the server's reranker (serve --reranker).",
    )
    rerank_candidates: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RERANK_CANDIDATES,
        description="How many fused candidates to rerank (default: max(3k, 30)).",
    )
    min_score: float | None = Field(
        default=None, description="Drop results whose reranker score is below this (needs rerank)."
    )
    exact: bool = Field(
        default=False,
        description="Dense side: compare with every stored vector instead of the ANN index (slow on "
        "big collections; for measuring the index's recall).",
    )

    def options(self) -> SearchOptions:
        """The search this request asks for (checked once more by SearchOptions: 400 on what the
        schema cannot say, such as a query of spaces)."""
        where = SearchFilter(self.path_glob, tuple(self.file_types), self.page_min, self.page_max)
        return SearchOptions(
            self.query,
            k=self.k,
            mode=self.mode,
            where=where,
            fusion=self.fusion,
            dense_weight=self.dense_weight,
            per_document=self.per_document,
            rerank=self.rerank,
            rerank_candidates=self.rerank_candidates,
            min_score=self.min_score,
            exact=self.exact,
        )


# Responses of the knowledge-base routes. Each mirrors what the route returns (a collection's
# config and totals, a job, a manifest record, a search result, plus the fields the route adds), so
# the OpenAPI document describes the API; tests/server/test_openapi.py checks they keep every field of
# the kb dataclasses they mirror.


class CollectionInfo(BaseModel):
    name: str
    model: str = Field(description="The served model name the collection embeds with.")
    model_reference: str = Field(description="How the model was referenced when the collection was made.")
    dimensions: int = Field(description="Stored vector size (MRL: at most native_dimensions).")
    native_dimensions: int
    instruction: str | None = Field(description="Query instruction (instruction-aware models).")
    store: str = Field(description="Vector store backend.")
    store_folder: str
    store_uri: str | None = Field(description="Where a server store lives (None: in the store folder).")
    chunk_tokens: int
    chunk_overlap: int
    created_at: float = Field(description="Unix time.")
    description: str
    lexical_language: str = Field(description="Stemmer and stop words of the lexical index.")
    lexical_version: int = Field(description="Version of the analyzer the lexical terms were made with.")
    documents: int = Field(description="Documents in the manifest (any status).")
    done: int = Field(description="Documents ingested.")
    failed: int = Field(description="Documents whose ingestion failed.")
    chunks: int
    tokens: int
    stored_chunks: int = Field(description="Chunks in the vector store.")
    vector_index: dict[str, Any] = Field(
        description="What dense search runs on: `type` ('exact' below ann_min_rows chunks, else the ANN "
        "index type), `rows_indexed`, and the build and search parameters."
    )
    folder: str = Field(description="The collection's folder on the server.")
    chunker_version: int = Field(default=1, description="The chunker version new documents are chunked by.")
    outdated_chunking: int = Field(
        default=0, description="Documents whose chunks were made by an older chunker version."
    )
    rechunk: str | None = Field(
        default=None,
        description="When documents were chunked by an older chunker: how many, and the command that "
        "re-chunks them (None: all are current).",
    )
    owner: str | None = Field(
        default=None, description="The user who owns it (None: nobody; with accounts on, admins only)."
    )
    you: Literal["owner", "admin", "editor", "viewer"] = Field(
        default="admin", description="The caller's access level (accounts off: admin)."
    )


class CollectionList(BaseModel):
    data: list[CollectionInfo]


class CollectionDropped(BaseModel):
    dropped: str = Field(description="The dropped collection's name.")


class JobInfo(BaseModel):
    id: str
    collection: str
    path: str = Field(description="The file on the server (a folder job: the folder).")
    name: str
    status: str = Field(
        description="queued, parsing, embedding (active); done, failed, cancelled (finished)."
    )
    error: str | None
    chunks: int
    tokens: int
    progress: float = Field(
        description="Share of the document embedded (0..1); 1 when done. A failed or cancelled job keeps "
        "the share it had reached."
    )
    rate: float | None = Field(default=None, description="While embedding: chunks embedded per second.")
    eta_seconds: float | None = Field(
        default=None, description="While embedding: seconds left at the pace so far (0 when done)."
    )
    chunks_total: int | None = Field(
        default=None,
        description="The document's chunks: estimated while embedding (from the share of its text the "
        "chunks so far cover), exact when done.",
    )
    outcome: str | None = Field(
        description="What ingestion did with the file once finished: added, updated, skipped (unchanged), "
        "failed, ..."
    )
    created_at: float = Field(description="Unix time.")
    updated_at: float = Field(description="Unix time.")
    sequence: int = Field(description="Increases with every change of any job (the event stream's id).")
    attempts: int
    cancel_requested: bool = Field(description="A cancel was asked for and the job is rolling back.")
    resumed: int = Field(description="Times the job was re-queued after a server restart.")
    kind: str = Field(default="file", description="file (one file) or folder (a folder ingested on Ray).")
    ray: str | None = Field(default=None, description="A folder job: the Ray address it runs on.")
    glob: str | None = None
    exclude: list[str] = Field(
        default_factory=list,
        description="A folder job: files left out (reached through a symlink leading outside the roots).",
    )
    summary: dict | None = Field(
        default=None,
        description="A finished folder job: added, updated, skipped, failed (with the reasons), chunks, "
        "tokens, and the Ray actors it used.",
    )


class JobList(BaseModel):
    data: list[JobInfo]


class UploadedJob(JobInfo):
    """The job of one uploaded file, and where the file went."""

    filename: str = Field(description="The filename as uploaded.")
    stored_as: str = Field(description="Path under the collection's uploads/ folder.")
    renamed_from: str | None = Field(description="Set when a different document already had that path.")
    replaced: bool
    identical: bool = Field(description="Same content as the document already there: no duplicate.")


class RejectedUpload(BaseModel):
    filename: str
    error: str
    status: int = Field(description="The HTTP status this file alone would have got.")


class UploadResult(BaseModel):
    jobs: list[UploadedJob]
    rejected: list[RejectedUpload]


class FailureInfo(BaseModel):
    id: str = Field(description="Stable per path; DELETE .../failures/{id} dismisses it.")
    path: str = Field(description="The file on the server (a refused upload: where it would have gone).")
    name: str = Field(description="The name to show (an upload: its path under uploads/).")
    status: str = Field(
        description="failed (unreadable, empty, binary, unparsable), unsupported (no loader for its "
        "type) or skipped (an upload whose path held a different file, with on_conflict=reject)."
    )
    reason: str
    stage: str = Field(description="upload (refused before it was stored) or ingest.")
    at: float = Field(description="Unix time of the latest failure of this path.")


class FailureList(BaseModel):
    data: list[FailureInfo]


class FailuresDismissed(BaseModel):
    dismissed: int


class RefusedPath(BaseModel):
    path: str
    error: str


class FolderResult(BaseModel):
    jobs: list[JobInfo]
    unsupported: list[str] = Field(description="Files skipped: no loader for their type.")
    refused: list[RefusedPath] = Field(description="Files reached through a symlink leading outside.")


class DocumentInfo(BaseModel):
    doc_id: str
    path: str
    file_type: str | None
    file_hash: str | None
    size: int | None
    generation: int | None
    chunks: int
    tokens: int
    pages: int | None
    title: str | None
    status: str
    error: str | None
    updated_at: float | None
    encoding: str | None = Field(
        description="Text encoding the file was read with (null: binary format or not recorded)."
    )
    chunker_version: int | None = Field(
        default=None,
        description="The chunker version its chunks were made by (null: before versions were recorded, "
        "i.e. version 1).",
    )
    ocr_engine: str | None = Field(
        default=None, description="The OCR engine that read pages without a text layer (null: none did)."
    )
    ocr_pages: list[int] = Field(
        default_factory=list, description="Pages (1-based) whose text comes from OCR."
    )
    warning: str | None = Field(
        default=None,
        description="What the ingest could not do for this document: pages needing OCR, an OCR limit hit.",
    )
    name: str = Field(description="The file name.")
    relative_path: str = Field(description="Path under uploads/ for an uploaded file, else the full path.")


class DocumentList(BaseModel):
    data: list[DocumentInfo]


class ChunkInfo(BaseModel):
    id: str
    index: int
    text: str
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    char_start: int
    char_end: int
    kind: Literal["text", "table"] = Field(
        default="text",
        description="'table': the text is a Markdown pipe table, its header row first (a table split by "
        "rows repeats the header in every chunk); 'text': anything else.",
    )


class DocumentDetail(DocumentInfo):
    chunks: list[ChunkInfo] = Field(description="The document's chunks, in order.")  # type: ignore[assignment]


class DocumentDeleted(BaseModel):
    deleted: str = Field(description="The deleted document's id.")


class SearchHit(BaseModel):
    text: str
    score: float = Field(description="The fused (or reranked) score; compare ranks, not scores.")
    retrievers: list[str] = Field(
        description="Which retrievers found the chunk (dense, lexical), and rerank:NAME when reranked."
    )
    path: str
    file_type: str
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    char_start: int
    char_end: int
    snippet: str = Field(
        description="The chunk's best sentences for the query, at most 280 visible characters, cut only "
        "between words: HTML-escaped, <mark> around matched terms, … where text was left out."
    )
    doc_id: str
    chunk_id: str
    rank: int = Field(description="1 for the best result.")
    rerank_score: float | None = Field(description="The reranker's score (null when not reranked).")
    kind: Literal["text", "table"] = Field(
        default="text",
        description="'table': the text is a Markdown pipe table, its header row first (a table split by "
        "rows repeats the header in every chunk); 'text': anything else.",
    )
    name: str
    relative_path: str


class SearchResponse(BaseModel):
    results: list[SearchHit]


class LoaderInfo(BaseModel):
    name: str
    extensions: list[str]


class LoaderList(BaseModel):
    data: list[LoaderInfo]


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: Text = Field(max_length=20000)


class AskRequest(BaseModel):
    question: Text = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[ChatMessage] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_MESSAGES,
        description="The conversation so far, oldest first, without this question (follow-ups).",
    )
    k: int = Field(
        default=DEFAULT_K, ge=1, le=MAX_ASK_K, description="Passages retrieved and sent as evidence."
    )
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    per_document: int | None = Field(
        default=None, ge=1, le=MAX_PER_DOCUMENT, description="At most this many passages of one document."
    )
    rerank: StrictBool = Field(
        default=False,
        description="Rerank the fused candidates with the server's reranker before the top k are sent.",
    )
    stream: StrictBool = Field(
        default=True, description="Server-Sent Events (evidence, token, done, error); false: one JSON."
    )

    def options(self) -> AskOptions:
        """The question this request asks (`rerank`: with the server's reranker, or a 400)."""
        history = tuple(message.model_dump() for message in self.history)
        return AskOptions(
            self.question,
            history,
            k=self.k,
            mode=self.mode,
            per_document=self.per_document,
            rerank=self.rerank,
        )


class EvidenceItem(SearchHit):
    number: int = Field(description="The passage's number in the prompt: the answer cites it as [number].")
    highlights: list[str] = Field(
        description="The passage's sentences sharing most query terms (HTML-escaped, terms in <mark>)."
    )


class CitationInfo(BaseModel):
    number: int = Field(description="The [number] marker the answer used.")
    path: str
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    chunk_id: str
    doc_id: str
    snippet: str
    name: str
    relative_path: str


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="The answer with [n] markers; empty without a chat endpoint.")
    citations: list[CitationInfo] = Field(description="The markers the answer used, in order of use.")
    evidence: list[EvidenceItem] = Field(description="Every passage sent, numbered, best first.")
    status: Literal["answered", "no_chat", "no_evidence"]
    message: str | None = Field(description="How to configure a chat endpoint, or why there is no answer.")
    model: str | None = Field(description="The chat model that wrote the answer.")
    retrieval_query: str = Field(description="What was searched: the question, after earlier ones.")


# --- accounts --------------------------------------------------------------------------------
class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for (shown in the list).")


class ShareRequest(BaseModel):
    kind: Literal["user", "group"]
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "editor"]


class ShareInfo(BaseModel):
    kind: Literal["user", "group"]
    name: str
    role: Literal["viewer", "editor"]


class CollectionAccessInfo(BaseModel):
    owner: str | None
    shares: list[ShareInfo]
    you: Literal["owner", "admin", "editor", "viewer"]
