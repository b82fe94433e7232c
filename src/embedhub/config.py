"""The one typed settings object. Nothing else in embedhub reads environment variables: every
other module receives a `Settings` (CLI flags map onto its fields)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("embedhub", appauthor=False))


class Settings(BaseSettings):
    """Configuration, from `EMBEDHUB_*` environment variables or explicit arguments."""

    model_config = SettingsConfigDict(env_prefix="EMBEDHUB_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Where collections and caches live.")
    model: str = Field(
        default="auto",
        description=(
            "Default model: a registry name, a local folder or a hub id. 'auto' prefers "
            "Qwen3-Embedding-0.6B when its weights are available and otherwise the offline fallback."
        ),
    )
    model_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra folders searched for model weights, by folder name (e.g. Qwen3-Embedding-0.6B).",
    )
    allow_downloads: bool = Field(
        default=False,
        description=(
            "Allow fetching weights from the Hugging Face hub. Off by default: embedhub never "
            "contacts a network address unless asked to."
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
        description="Padded tokens per forward pass (batch size x longest input).",
    )
    max_batch_size: int = Field(default=64, ge=1, description="Inputs per forward pass at most.")

    # --- the server -------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address to bind; loopback by default.")
    port: int = Field(default=8000, ge=0, le=65535)
    serve_models: list[str] = Field(
        default_factory=list, description="Models to serve (default: the `model` setting alone)."
    )
    aliases: dict[str, str] = Field(
        default_factory=dict, description="Extra request names: alias -> served model name or reference."
    )
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys; empty means no auth.")
    allow_public: bool = Field(
        default=False, description="Allow binding a non-loopback address without any API key."
    )
    max_items_per_request: int = Field(default=2048, ge=1, description="Inputs in one request at most.")
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="Request body size limit.")
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

    @field_validator("folder_roots", mode="before")
    @classmethod
    def _split_folder_roots(cls, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def prefer_passive_openmp_waiting() -> None:
    """torch's OpenMP threads spin between operations by default; with as many threads as cores, a
    spinning thread holds the core its partner needs whenever anything else runs (the event loop,
    tokenisation, other processes): forward passes measured 5-25x slower on a busy 2-core machine
    (docs/performance.md). Must run before torch loads; an explicit OMP_WAIT_POLICY wins. This is
    the one place besides Settings that touches the environment, and it only writes a default."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings read from the environment once."""
    return Settings()
