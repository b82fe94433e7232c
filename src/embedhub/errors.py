"""Domain errors. Each says what was wrong, the limit, and what to do; the CLI and the HTTP layer
map them to exit codes and status codes in one place each."""

from __future__ import annotations


class EmbedhubError(Exception):
    """Base class: a problem the caller can act on (bad input or configuration)."""


class InvalidInputError(EmbedhubError, ValueError):
    """The request itself is malformed: empty text, unknown kind, bad dimensions."""


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the model accepts and truncation was not requested."""

    def __init__(self, index: int, token_count: int, limit: int) -> None:
        self.index = index
        self.token_count = token_count
        self.limit = limit
        super().__init__(
            f"input {index} has {token_count} tokens, more than the model's limit of {limit}; "
            'shorten it, split it, or ask for truncation (--truncate / "truncate": true)'
        )


class UnsupportedDimensionsError(InvalidInputError):
    """`dimensions` outside the model's Matryoshka range, or asked of a model without MRL."""


class UnknownModelError(EmbedhubError, LookupError):
    """A model name that is neither registered, a local folder, nor loadable from a hub."""


class ModelLoadError(EmbedhubError, RuntimeError):
    """A model was found but could not be loaded (missing files, incompatible config)."""
