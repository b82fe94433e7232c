"""What every command group shares: domain errors become one line on stderr and exit code 2, and
the options several groups take."""

from __future__ import annotations

from functools import wraps
from typing import Annotated

import typer

from embedhub.config import Settings
from embedhub.errors import EmbedhubError


def user_errors(command):
    """Turn domain errors into one line on stderr and exit code 2 (no traceback)."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except EmbedhubError as error:
            typer.echo(f"embedhub: error: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Registry name, local folder, .gguf file, hub id or remote:URL#MODEL (default: auto).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="torch | torch-bf16 | torch-int8 | onnx-int8 | gguf | remote | auto (per-model default). "
        "[env: EMBEDHUB_BACKEND]",
        show_default=False,
    ),
]


def settings_for(model: str | None = None, backend: str | None = None) -> Settings:
    settings = Settings()
    updates = {key: value for key, value in (("model", model), ("backend", backend)) if value}
    return settings.model_copy(update=updates) if updates else settings


def check_backend(settings: Settings) -> None:
    """An unknown or not-installed backend fails before any weights load."""
    from embedhub.models.backends import AUTO, get_backend

    if settings.backend.strip().lower() != AUTO:
        get_backend(settings.backend)
