"""The one typed settings object. Nothing else in embedhub reads environment variables: every
other module receives a `Settings` (CLI flags map onto its fields)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings read from the environment once."""
    return Settings()
