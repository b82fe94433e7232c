"""What every command group shares: domain errors become one line on stderr and exit code 2."""

from __future__ import annotations

from functools import wraps

import typer

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
