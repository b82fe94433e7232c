"""Domain errors. Each says what was wrong, the limit, and what to do; the CLI and the HTTP layer
map them to exit codes and status codes in one place each."""

from __future__ import annotations


class EmbedhubError(Exception):
    """Base class: a problem the caller can act on (bad input or configuration)."""


class InvalidInputError(EmbedhubError, ValueError):
    """The request itself is malformed: empty text, unknown kind, bad dimensions."""


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the model accepts and truncation was not requested.

    The hint names the way to ask for truncation, which depends on the entry point (a CLI flag,
    a request field, a server option): each entry point re-raises with its own `with_hint`, so no
    message names an option that does not exist where the user is."""

    DEFAULT_HINT = "shorten it or split it"

    def __init__(
        self, index: int, token_count: int, limit: int, hint: str | None = None, *, at_least: bool = False
    ) -> None:
        self.index = index
        #: the input's tokens, or (`at_least`) a lower bound of them: a text far over the limit is
        #: counted only as far as needed to know it is over, not tokenised whole
        self.token_count = token_count
        self.limit = limit
        self.hint = hint or self.DEFAULT_HINT
        self.at_least = at_least
        count = f"over {token_count}" if at_least else str(token_count)
        super().__init__(
            f"input {index} has {count} tokens, more than the model's limit of {limit}; {self.hint}"
        )

    def with_hint(self, hint: str) -> InputTooLongError:
        """The same error with the truncation option of the caller's entry point."""
        return InputTooLongError(self.index, self.token_count, self.limit, hint, at_least=self.at_least)


class UnsupportedDimensionsError(InvalidInputError):
    """`dimensions` outside the model's Matryoshka range, or asked of a model without MRL."""


class ConfigurationError(EmbedhubError, ValueError):
    """A setting (an EMBEDHUB_* variable or a CLI flag) has a value embedhub cannot use."""


class UnknownModelError(EmbedhubError, LookupError):
    """A model name that is neither registered, a local folder, nor loadable from a hub."""


class ModelLoadError(EmbedhubError, RuntimeError):
    """A model was found but could not be loaded (missing files, incompatible config)."""
