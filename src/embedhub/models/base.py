"""The encoder contract every backend implements, and the post-processing all of them share.

Work is split tokenize -> core -> post, so a scheduler can tokenise on threads while the model
runs: `tokenize` turns texts into the exact model input ids (instruction, special tokens,
truncation); `embed_token_ids` runs the model and pools; `finish` applies MRL and normalisation.
`encode` chains the three for callers that do not schedule. All calls are batch-first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from embedhub.errors import InputTooLongError, InvalidInputError, ModelLoadError
from embedhub.models.spec import InputKind, ModelSpec


@dataclass(frozen=True)
class Embeddings:
    """A float32 matrix (one row per input, in input order) and the tokens each input used."""

    vectors: np.ndarray
    token_counts: tuple[int, ...]

    @property
    def prompt_tokens(self) -> int:
        return int(sum(self.token_counts))

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])


def finish(vectors: np.ndarray, dimensions: int | None, normalize: bool) -> np.ndarray:
    """Matryoshka: keep the first `dimensions` components, THEN L2-normalise (the order the models
    were trained with; normalising first would leave the cut vector shorter than 1)."""
    out = np.asarray(vectors, dtype=np.float32)
    if dimensions is not None and dimensions < out.shape[1]:  # native size (or None): nothing to cut
        out = out[:, :dimensions]
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = out / np.maximum(norms, np.finfo(np.float32).tiny)
    return np.ascontiguousarray(out, dtype=np.float32)


def framing(tokenizer: Tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special ids the tokenizer's post-processor puts around content (e.g. [CLS] ... [SEP])."""
    bare = tokenizer.encode("hello", add_special_tokens=False).ids
    full = tokenizer.encode("hello", add_special_tokens=True).ids
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return tuple(full[:start]), tuple(full[start + len(bare) :])
    raise ModelLoadError("cannot tell the tokenizer's special tokens apart from content")


class Encoder(ABC):
    """A loaded embedding model. Subclasses provide the tokenizer framing and the forward pass."""

    spec: ModelSpec
    #: the backend name that runs the model (models/backends.py), shown by /v1/models and /metrics
    backend: str = "torch"
    #: why that backend serves, with the CPU class (models/backends.py); /v1/models shows it
    backend_reason: str = ""
    #: ids placed before / after the content of every input (e.g. [CLS] / [SEP], or Qwen3's
    #: single trailing <|endoftext|>)
    prefix_ids: tuple[int, ...] = ()
    suffix_ids: tuple[int, ...] = ()
    #: batches the serving queue may run at once: one for an in-process model (a forward pass
    #: already uses every core), more for a model whose passes run elsewhere (remote endpoints)
    concurrent_batches: int = 1

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    @property
    def native_dims(self) -> int:
        return self.spec.dimensions

    @abstractmethod
    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text without any special token."""

    @abstractmethod
    def embed_token_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Pooled, unnormalised, native-size float32 vectors for complete model inputs."""

    @abstractmethod
    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary entry of each id (for display)."""

    def unframed(self, ids: Sequence[int]) -> list[int]:
        """Content ids without the special tokens a caller may already have put around them, so
        framing never adds them twice (Qwen3's <|endoftext|> exactly once)."""
        content = list(ids)
        if self.prefix_ids and content[: len(self.prefix_ids)] == list(self.prefix_ids):
            content = content[len(self.prefix_ids) :]
        if self.suffix_ids and content[-len(self.suffix_ids) :] == list(self.suffix_ids):
            content = content[: -len(self.suffix_ids)]
        return content

    def frame(self, content: Sequence[int], index: int = 0, truncate: bool = False) -> list[int]:
        """Wrap content ids in the special tokens, enforcing the length limit: over-long input is an
        error unless truncation was asked for, and a cut keeps the closing special token."""
        content = self.unframed(content)
        room = self.max_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        if len(content) > room:
            if not truncate:
                raise InputTooLongError(
                    index,
                    len(content) + len(self.prefix_ids) + len(self.suffix_ids),
                    self.max_tokens,
                )
            content = content[:room]
        return [*self.prefix_ids, *content, *self.suffix_ids]

    def tokenize(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str = InputKind.DOCUMENT,
        instruction: str | None = None,
        truncate: bool = False,
    ) -> list[list[int]]:
        """The exact model input ids of each text."""
        kind = InputKind.parse(kind)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInputError(f"input {index} is not a string: {type(text).__name__}")
            if not text.strip():
                raise InvalidInputError(f"input {index} is empty; every input needs some text")
        formatted = [self.spec.format_text(text, kind, instruction) for text in texts]
        contents = self.content_ids(formatted)
        return [self.frame(ids, index, truncate) for index, ids in enumerate(contents)]

    def frame_token_ids(self, inputs: Sequence[Sequence[int]], *, truncate: bool = False) -> list[list[int]]:
        """Pre-tokenised input (the OpenAI token-array form): validated and framed."""
        vocabulary = self.vocabulary_size
        framed = []
        for index, ids in enumerate(inputs):
            if len(ids) == 0:
                raise InvalidInputError(f"input {index} is an empty token list")
            bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < vocabulary]
            if bad:
                raise InvalidInputError(
                    f"input {index} holds token id {bad[0]!r} outside the vocabulary 0..{vocabulary - 1}"
                )
            framed.append(self.frame(ids, index, truncate))
        return framed

    @property
    @abstractmethod
    def vocabulary_size(self) -> int:
        """Number of token ids the model accepts."""

    def raw_vectors(self, inputs: Sequence[Sequence[int]], size: int) -> np.ndarray:
        """Pooled vectors of framed inputs before MRL and normalisation, at least `size` wide; a
        backend that can compute the smaller size itself (an endpoint with MRL) overrides this."""
        return self.embed_token_ids(inputs)

    def embed_framed(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        dimensions: int | None = None,
        normalize: bool = True,
    ) -> Embeddings:
        """Run already framed inputs and apply MRL / normalisation."""
        size = self.spec.check_dimensions(dimensions)
        if not inputs:
            return Embeddings(np.zeros((0, size), dtype=np.float32), ())
        raw = self.raw_vectors(inputs, size)
        vectors = finish(raw, size, normalize)
        return Embeddings(vectors, tuple(len(ids) for ids in inputs))

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str = InputKind.DOCUMENT,
        instruction: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        truncate: bool = False,
    ) -> Embeddings:
        """Texts in, vectors and token usage out."""
        self.spec.check_dimensions(dimensions)
        inputs = self.tokenize(texts, kind=kind, instruction=instruction, truncate=truncate)
        return self.embed_framed(inputs, dimensions=dimensions, normalize=normalize)

    def count_tokens(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str = InputKind.DOCUMENT,
        instruction: str | None = None,
    ) -> list[int]:
        """Tokens each text costs as the model sees it (may exceed max_tokens: nothing is cut)."""
        kind = InputKind.parse(kind)
        formatted = [self.spec.format_text(text, kind, instruction) for text in texts]
        extra = len(self.prefix_ids) + len(self.suffix_ids)
        return [len(ids) + extra for ids in self.content_ids(formatted)]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, sessions)."""
