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


class InputTooLargeError(InvalidInputError):
    """Finding where an input is cut to the model's limit would mean tokenising more characters
    than `EMBEDHUB_MAX_INPUT_CHARS`: past the point the limit needs, the text runs on without
    whitespace, and a tokenizer that cannot cut inside a word exactly (Unigram: XLM-R, e5; one
    WordPiece [UNK] word) must read such a run to its end. Refused rather than read for a minute."""

    def __init__(self, characters: int, limit: int, index: int | None = None) -> None:
        self.characters, self.limit, self.index = characters, limit, index
        subject = "an input" if index is None else f"input {index}"
        super().__init__(
            f"finding where the model's token limit cuts {subject} would mean tokenising "
            f"{characters:,} characters of it: the text runs on without whitespace past that point, "
            "and this model's tokenizer cuts such a run exactly only by reading all of it. The most "
            f"one input may have tokenised is {limit:,} characters (the setting "
            "EMBEDHUB_MAX_INPUT_CHARS); cut the text before sending it, or split it into inputs "
            "with spaces or line breaks"
        )

    def at(self, index: int) -> InputTooLargeError:
        """The same error naming the input's position in the request."""
        return InputTooLargeError(self.characters, self.limit, index)


class UnsupportedDimensionsError(InvalidInputError):
    """`dimensions` outside the model's Matryoshka range, or asked of a model without MRL."""


class ConfigurationError(EmbedhubError, ValueError):
    """A setting (an EMBEDHUB_* variable or a CLI flag) has a value embedhub cannot use."""


class UnknownModelError(EmbedhubError, LookupError):
    """A model name that is neither registered, a local folder, nor loadable from a hub."""


class ModelLoadError(EmbedhubError, RuntimeError):
    """A model was found but could not be loaded (missing files, incompatible config)."""
