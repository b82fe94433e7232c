"""The one typed settings object. Nothing else in embedhub reads environment variables: every
other module receives a `Settings` (CLI flags map onto its fields)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, IPvAnyNetwork, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from embedhub.errors import ConfigurationError

ENV_PREFIX = "EMBEDHUB_"
# What a value must look like, for settings whose form a type name does not say.
_EXPECTED = {
    "model_dirs": f"folders separated by {os.pathsep!r} (e.g. /models{os.pathsep}/more) or a JSON list",
    "folder_roots": f"folders separated by {os.pathsep!r} or a JSON list",
    "serve_models": 'model names separated by commas, or a JSON list such as ["a", "b"]',
    "api_keys": "keys separated by commas, or a JSON list",
    "trusted_proxies": "addresses or CIDRs separated by commas (10.0.0.5,10.1.0.0/16), or a JSON list",
    "aliases": 'a JSON object mapping alias to model, such as {"small": "all-MiniLM-L6-v2"}',
    "chat_url": "the chat API's base URL, such as http://127.0.0.1:11434/v1",
    "ocr": "auto, none, rapidocr or tesseract",
    "remote_endpoints": 'a JSON object mapping model to URLs, such as {"m": ["http://h:8000/v1"]}',
}
_SECRET_SETTINGS = {"api_key", "api_keys", "chat_api_key", "milvus_token", "remote_api_key"}


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("embedhub", appauthor=False))


class Settings(BaseSettings):
    """Configuration, from `EMBEDHUB_*` environment variables or explicit arguments."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    def __init__(self, **values: Any) -> None:
        # A bad EMBEDHUB_* value becomes one line naming the variable, the value and what is
        # expected, instead of pydantic's multi-page report (the CLI prints it with exit code 2).
        try:
            super().__init__(**values)
        except (ValidationError, SettingsError) as error:
            raise ConfigurationError(_describe_settings_error(error, values)) from None

    home: Path = Field(default_factory=_default_home, description="Where collections and caches live.")
    model: str = Field(
        default="auto",
        description=(
            "Default model: a registry name, a local folder or a hub id. 'auto' prefers "
            "Qwen3-Embedding-0.6B when its weights are available and otherwise the offline fallback."
        ),
    )
    model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra folders searched for model weights, by folder name (e.g. Qwen3-Embedding-0.6B); "
            f"in the environment a {os.pathsep!r}-separated path list or a JSON list."
        ),
    )
    allow_downloads: bool = Field(
        default=False,
        description=(
            "Allow fetching weights from the Hugging Face hub. Off by default: embedhub never "
            "contacts a network address unless asked to."
        ),
    )
    backend: str = Field(
        default="auto",
        description=(
            "How models run: torch (float32), torch-bf16, torch-int8, onnx-int8 (needs the onnx "
            "extra), gguf (.gguf files through llama.cpp; needs the gguf extra), remote "
            "(remote:URL#MODEL references: OpenAI-compatible endpoints elsewhere), or auto (the "
            "model's measured default for this CPU class, ModelSpec.default_backends; gguf for a "
            ".gguf file, remote for a remote: reference)."
        ),
    )
    cpu_class: str | None = Field(
        default=None,
        description=(
            "Treat this CPU as another class when choosing backends and int8 formats (baseline, "
            "avx2, avx2-vnni, avx512, avx512-vnni, avx512-bf16, amx; models/cpu.py); unset: detected."
        ),
    )
    device: str = Field(default="cpu", description="torch device for local encoders.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="Compute dtype for local encoders."
    )
    threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads (default: all cores)."
    )
    max_batch_tokens: int = Field(
        default=16384,
        ge=1,
        description=(
            "Padded tokens per forward pass (batch size x longest input); for the gguf backend also "
            "the llama.cpp context, so the longest input it accepts."
        ),
    )
    max_batch_size: int = Field(default=64, ge=1, description="Inputs per forward pass at most.")
    heap_activations: bool = Field(
        default=True,
        description=(
            "Tune glibc malloc when a model loads so large activations stay on the heap instead of "
            "being mmapped and unmapped every layer (about 2x on Qwen3 batches; "
            "embedhub.models.allocator). The cost: freed memory up to 1 GiB stays with the process."
        ),
    )

    # --- remote encoders (models/remote.py) -------------------------------------------------
    remote_endpoints: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Endpoints of remote models, so `--model remote:NAME` needs no URL: a JSON object "
            'such as {"Qwen3-Embedding-4B": ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]}.'
        ),
    )
    remote_api_key: str | None = Field(default=None, description="Bearer key sent to remote endpoints.")
    remote_timeout: float = Field(default=60.0, gt=0, description="Seconds one remote request may take.")
    remote_max_batch: int = Field(default=32, ge=1, description="Inputs per request to a remote endpoint.")
    remote_max_batch_tokens: int = Field(
        default=16384, ge=1, description="Padded tokens per request to a remote endpoint."
    )
    remote_concurrency: int = Field(default=2, ge=1, description="Requests in flight per remote endpoint.")
    remote_retries: int = Field(
        default=5, ge=1, description="Tries of one remote request (over all endpoints) before it fails."
    )

    # --- distributed ingestion (kb/distributed.py; the ray extra) ----------------------------
    ray_address: str | None = Field(
        default=None,
        description=(
            "Ingest on Ray (`kb add --ray`): 'auto' starts a local Ray on 127.0.0.1 for the run; "
            "'HOST:PORT' joins a running cluster from a node of it, 'ray://HOST:PORT' through Ray "
            "Client. Unset: files are ingested in this process."
        ),
    )
    ray_actors: int | None = Field(
        default=None,
        ge=1,
        description="Ray actors (model copies) an ingest starts (default: the "
        "cluster's CPUs / ray_actor_cpus, at least 1).",
    )
    ray_actor_cpus: int = Field(
        default=1, ge=1, description="CPUs each Ray ingest actor reserves, and its torch threads."
    )
    ray_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local Ray that `--ray auto` starts (default: all)."
    )

    # --- the server -------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(default=8000, ge=0, le=65535)
    serve_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models to serve (default: the `model` setting alone); comma-separated or JSON.",
    )
    reranker: str | None = Field(
        default=None,
        description=(
            "A reranker to serve at /v1/rerank and for knowledge-base search: Qwen3-Reranker-0.6B / "
            "4B / 8B (weights from model_dirs or the local Hugging Face cache) or the folder of a "
            "Qwen3-Reranker or a sentence-transformers cross-encoder. Unset: no reranker."
        ),
    )
    aliases: dict[str, str] = Field(
        default_factory=dict, description="Extra request names: alias -> served model name or reference."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Bearer keys; empty means no auth. Comma-separated or JSON."
    )
    api_key: str | None = Field(
        default=None,
        description="Your own key as a client: `kb search` / `kb ask` / `embedhub mcp` send it to the "
        "running `embedhub serve` for this home (with accounts on, a user's key, made in the web UI "
        "or with POST /v1/auth/keys: the server then applies that user's access). Unset: the first of "
        "api_keys, if any.",
    )
    milvus_token: str | None = Field(
        default=None,
        description="Token of the Milvus server or cluster that `milvus` collections with a URI use "
        "('user:password', or an API key); never written to collection.json.",
    )
    allow_public: bool = Field(
        default=False, description="Allow binding a non-loopback address without any API key."
    )
    accounts: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "User accounts (sign-in, per-user API keys, private collections): 'auto' turns them on "
            "when the server is bound to a non-loopback address and leaves them off on loopback "
            "(a single user, no sign-in); 'on' or 'off' decide explicitly."
        ),
    )
    session_lifetime: int = Field(
        default=12 * 3600,
        ge=60,
        description="Seconds a sign-in lasts (absolute, from the sign-in; the cookie's Max-Age).",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins per account and per client address before they are slowed down.",
    )
    login_window: float = Field(
        default=900.0,
        gt=0,
        description=(
            "Seconds failed sign-ins are remembered; beyond login_max_failures each further attempt "
            "waits twice as long as the last (1 s, 2 s, 4 s, ...), never longer than this window."
        ),
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description=(
            "Reverse proxies whose forwarded-for header is believed: addresses or CIDRs (10.0.0.5, "
            "10.0.0.0/24, ::1), comma-separated or a JSON list. Behind them the client is the "
            "rightmost address in the header that is not a trusted proxy; sign-in throttling and the "
            "audit log use it. Empty (the default): headers are ignored, the connection's address counts."
        ),
    )
    proxy_header: Literal["x-forwarded-for", "forwarded"] = Field(
        default="x-forwarded-for",
        description=(
            "The header the trusted proxies set: x-forwarded-for (nginx, Caddy, Traefik, HAProxy) or "
            "forwarded (RFC 7239). Only this one is read: a client could send the other itself."
        ),
    )
    max_items_per_request: int = Field(default=2048, ge=1, description="Inputs in one request at most.")
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Request body size limit, checked while the body streams in, before it is parsed.",
    )
    max_input_chars: int = Field(
        default=1_000_000,
        ge=1,
        description=(
            "Characters one input may hold when it is not truncated: a longer one answers 413 before "
            "it is tokenised (tokenising it whole would take seconds, and no model's limit fits it in "
            "practice: Qwen3's 32,768 tokens are about 130,000 characters of English). With "
            "truncation on, only the part the model's limit can use is tokenised, at any length, and at "
            "most this many characters of it: a model that cannot cut inside a word (e5's Unigram) "
            "must read a run without whitespace to its end, so a longer such run answers 413 too."
        ),
    )
    max_input_tokens: int | None = Field(
        default=None, ge=1, description="Per-input token limit below the model's own (None: model limit)."
    )
    max_queue_items: int = Field(
        default=4096, ge=1, description="Inputs waiting for the model at most; beyond it requests get 429."
    )
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Upload request size limit (all files of one request).",
    )
    ingest_workers: int = Field(default=1, ge=1, description="Files ingested at once by background jobs.")
    ann_min_rows: int = Field(
        default=50_000,
        ge=1,
        description=(
            "Chunks a collection holds before an approximate (ANN) vector index is built after an "
            "ingest; below it dense search is exact (fast enough: ~30 ms at 20k chunks of 384 dims "
            "on 2 cores, docs/performance.md)."
        ),
    )
    ann_ef: int = Field(
        default=150,
        ge=10,
        le=32768,
        description=(
            "Candidates a Milvus HNSW search keeps while walking the graph; higher: better recall, "
            "slower. Chosen for recall@10 >= 0.95 (docs/performance.md, 'Scale'); raised to one per "
            "100 chunks in a bigger collection (its one graph needs more as it grows). LanceDB's "
            "index is a scan of 8-bit codes and needs none."
        ),
    )
    allow_server_folders: bool = Field(
        default=True, description="Allow the HTTP API to ingest folders on the server's own disk."
    )
    folder_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Folders on the server the HTTP API may ingest and serve files from (os.pathsep-separated "
            "or a JSON list; symlinks resolved). Unset: any folder the server user can read when bound "
            "to loopback (your own machine, like the CLI), none when bound to another address."
        ),
    )
    cache_mb: float = Field(default=256.0, ge=0, description="In-memory embedding cache size (MiB).")
    cache_on_disk: bool = Field(default=False, description="Also keep cached embeddings in HOME/cache.")
    truncate: bool = Field(
        default=True,
        description=(
            "Server policy for over-long inputs: cut them to the model's limit (keeping the final "
            "special token) and count them in `usage.truncated_inputs`, or answer 400. A request's "
            "own `truncate` field wins. The CLI `embed` command stays strict unless --truncate."
        ),
    )
    accept_token_ids: bool = Field(
        default=False,
        description=(
            "Accept token-id arrays as /v1/embeddings input. Off by default: the ids are read in the "
            "served model's vocabulary, and ids from another tokenizer (tiktoken's, as LangChain "
            "sends by default) would give wrong vectors without any error."
        ),
    )

    # --- answers (`kb ask`): any OpenAI-compatible chat endpoint -----------------------------
    chat_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible chat API that writes answers from the evidence, e.g. "
            "http://127.0.0.1:11434/v1 (Ollama), http://127.0.0.1:8080/v1 (llama.cpp's server), a vLLM "
            "or SGLang server or a hosted API. Unset: `ask` returns the evidence without an answer."
        ),
    )
    chat_model: str | None = Field(
        default=None,
        description="The chat model to ask (unset: the first model the endpoint lists at /models).",
    )
    chat_api_key: str | None = Field(
        default=None, description="Bearer key for the chat endpoint, if it needs one."
    )
    chat_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for the chat endpoint to accept a connection."
    )
    chat_read_timeout: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Seconds the chat endpoint may stay silent: before its first token (a CPU server reads the "
            "evidence first) and between two pieces of the answer."
        ),
    )
    chat_timeout: float = Field(
        default=600.0, gt=0, description="Seconds one answer may take in all, however it trickles in."
    )

    # --- OCR of pages without a text layer (scanned PDFs, images; kb/ocr.py) -----------------
    ocr: str = Field(
        default="auto",
        description=(
            "OCR engine for scanned PDF pages and image files: auto (rapidocr, else tesseract, "
            "whichever is installed), none (pages without text are reported as needing OCR), "
            "rapidocr (pip install 'embedhub[ocr]') or tesseract (apt-get install tesseract-ocr "
            "tesseract-ocr-chi-sim)."
        ),
    )
    ocr_page_seconds: float = Field(
        default=180.0,
        gt=0,
        description=(
            "Seconds OCR may spend on one page before it is given up (an A4 page took 5-48 s on "
            "two cores at 200 dpi, more on a busy machine; docs/retrieval.md)."
        ),
    )
    ocr_max_pages: int = Field(
        default=200,
        ge=1,
        description=(
            "Pages of one document read by OCR at most (about 30 minutes at ~8 s a page); the "
            "rest are named in the document's warning."
        ),
    )

    @field_validator("chat_url", mode="before")
    @classmethod
    def _chat_base_url(cls, value: Any) -> Any:
        """The base URL, without a trailing slash or a pasted `/chat/completions`; empty is unset."""
        if not isinstance(value, str):
            return value
        text = value.strip().rstrip("/").removesuffix("/chat/completions")
        if not text:
            return None
        if not text.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return text

    @field_validator("model_dirs", "folder_roots", mode="before")
    @classmethod
    def _split_path_list(cls, value: Any) -> Any:
        return _split_list(value, os.pathsep)

    @field_validator("serve_models", "api_keys", "trusted_proxies", mode="before")
    @classmethod
    def _split_comma_list(cls, value: Any) -> Any:
        return _split_list(value, ",")

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def accounts_enabled(self) -> bool:
        """Whether sign-in and per-collection access apply ('auto': on for a non-loopback bind)."""
        if self.accounts == "auto":
            return not is_loopback(self.host)
        return self.accounts == "on"


def _split_list(value: Any, separator: str) -> Any:
    """A list from the environment: a JSON list, or plain items joined by `separator`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a valid JSON list ({error.msg} at character {error.pos})") from None
    return [item.strip() for item in text.split(separator) if item.strip()]


def _describe_settings_error(error: ValidationError | SettingsError, values: dict[str, Any]) -> str:
    """One line: which variable, its value, what was expected."""
    if isinstance(error, SettingsError):
        # pydantic-settings failed to JSON-decode a complex value: its message names the field.
        field = next((name for name in Settings.model_fields if f'"{name}"' in str(error)), None)
        problems = [(field, None, "not valid JSON")] if field else [(None, None, str(error))]
    else:
        problems = [
            (str(item["loc"][0]) if item["loc"] else None, item.get("input"), item["msg"])
            for item in error.errors()
        ]
    parts = []
    for field, given, message in problems:
        if field is None:
            parts.append(f"invalid setting: {message}")
            continue
        variable = ENV_PREFIX + field.upper()
        from_environment = field not in values and variable in os.environ
        raw = os.environ.get(variable) if from_environment else given
        shown = "<hidden>" if field in _SECRET_SETTINGS else repr(raw)
        name = variable if from_environment else f"setting {field!r}"
        expected = _EXPECTED.get(field)
        reason = message.removeprefix("Value error, ")
        parts.append(f"{name}={shown} is invalid: {reason}" + (f"; expected {expected}" if expected else ""))
    return "; ".join(parts)


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only (policies differ for others)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prefer_passive_openmp_waiting() -> None:
    """torch's OpenMP threads spin between operations by default; with as many threads as cores, a
    spinning thread holds the core its partner needs whenever anything else runs (the event loop,
    tokenisation, other processes): forward passes measured 5-25x slower on a busy 2-core machine
    (docs/performance.md). Must run before torch loads; an explicit OMP_WAIT_POLICY wins. This is
    the one place besides Settings that touches the environment, and it only writes a default."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
