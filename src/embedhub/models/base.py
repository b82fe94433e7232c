"""The encoder contract every backend implements, and the post-processing all of them share.

Work is split tokenize -> core -> post, so a scheduler can tokenise on threads while the model
runs: `tokenize` turns texts into the exact model input ids (instruction, special tokens,
truncation); `embed_token_ids` runs the model and pools; `finish` applies MRL and normalisation.
`encode` chains the three for callers that do not schedule. All calls are batch-first.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from embedhub.errors import InputTooLargeError, InputTooLongError, InvalidInputError, ModelLoadError
from embedhub.models.spec import InputKind, ModelSpec

#: ids a prefix's tokenisation must hold beyond the ones kept before they are trusted as the whole
#: text's (the reasoning: `Encoder.bounded_content_ids`)
CUT_MARGIN_TOKENS = 128
#: characters of a text tokenised at first per id wanted; the prefix doubles while too short
FIRST_CHARS_PER_TOKEN = 8


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
    #: whether the tokenizer's ids stay those of the whole text when a prefix ends inside a word
    #: (BPE, WordPiece: see `bounded_content_ids`); False (Unigram, or not known) cuts only before
    #: whitespace, which every pre-tokenizer served here ends a piece at
    cuts_inside_words: bool = False
    #: the most characters one input may have tokenised to find its cut when truncating
    #: (`Settings.max_input_chars`, set by the loaders): a run without whitespace past the point the
    #: limit needs is read to its end when the tokenizer cannot cut inside a word (e5: 30 MB in
    #: about 60 s); longer than this it is refused (InputTooLargeError). None: no limit.
    max_tokenised_chars: int | None = None
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

    def frame(
        self, content: Sequence[int], index: int = 0, truncate: bool = False, limit: int | None = None
    ) -> list[int]:
        """Wrap content ids in the special tokens, enforcing the length limit (the model's, or a
        lower `limit`): over-long input is an error unless truncation was asked for, and a cut keeps
        the closing special token."""
        limit = self.max_tokens if limit is None else min(limit, self.max_tokens)
        content = self.unframed(content)
        room = limit - len(self.prefix_ids) - len(self.suffix_ids)
        if len(content) > room:
            if not truncate:
                raise InputTooLongError(
                    index,
                    len(content) + len(self.prefix_ids) + len(self.suffix_ids),
                    limit,
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
        limit: int | None = None,
    ) -> list[list[int]]:
        """The exact model input ids of each text (at most `limit` tokens, default the model's)."""
        return self.tokenize_with_cuts(
            texts, kind=kind, instruction=instruction, truncate=truncate, limit=limit
        )[0]

    def tokenize_with_cuts(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str = InputKind.DOCUMENT,
        instruction: str | None = None,
        truncate: bool = False,
        limit: int | None = None,
    ) -> tuple[list[list[int]], set[int]]:
        """The exact model input ids of each text and the indices of the inputs that were cut.

        With truncation on, a text far longer than the limit could use is never tokenised whole:
        only a prefix is (`bounded_content_ids`), so a 30 MB input costs what a few hundred
        kilobytes cost, and its ids are those of the whole text's tokenisation, cut."""
        kind = InputKind.parse(kind)
        limit = self.max_tokens if limit is None else min(limit, self.max_tokens)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInputError(f"input {index} is not a string: {type(text).__name__}")
            if not text.strip():
                raise InvalidInputError(f"input {index} is empty; every input needs some text")
        room = limit - len(self.prefix_ids) - len(self.suffix_ids)
        if truncate:
            contents = self.bounded_content_ids(texts, kind, instruction, room)
        else:
            contents = self.content_ids([self.spec.format_text(text, kind, instruction) for text in texts])
        cut = {index for index, ids in enumerate(contents) if len(self.unframed(ids)) > room}
        return [self.frame(ids, index, truncate, limit) for index, ids in enumerate(contents)], cut

    def bounded_content_ids(
        self, texts: Sequence[str], kind: InputKind, instruction: str | None, room: int
    ) -> list[list[int]]:
        r"""Content ids of each formatted text, of which at least the first `room` equal those of
        the whole text's tokenisation, tokenising only a prefix of a text far longer than `room`
        tokens could cover.

        Why a prefix's first ids are the whole text's: every tokenizer served here normalises
        character by character (NFC; BERT's lowercasing and accent stripping; XLM-R's character
        map, its runs of spaces made one), splits the normalised text into pieces and tokenises each
        piece alone, and each pre-tokenizer ends a piece before whitespace (Qwen's regex, with its
        `\s+(?!\S)`; BERT's whitespace and punctuation split; XLM-R's Metaspace). Cutting the text
        changes only the pieces that touch the cut, so ids followed by `CUT_MARGIN_TOKENS` more ids
        in the prefix's tokenisation are final when the last piece yields fewer ids than that:
        - WordPiece (MiniLM) matches greedily from the left, so a cut inside a word changes only
          that word's ids, at most 100 (its longest word; a longer one is one [UNK]): below the margin.
        - Byte-level BPE (Qwen3) applies merges by rank, lowest first and leftmost among equals,
          so a cut inside a piece (a run without spaces such as "x" * N is one piece) changes a
          merge only next to the cut and, leftwards, only through overlapping merges of ever lower
          rank, a chain a few tokens long in this vocabulary (tested on runs, scripts, emoji and
          generated texts in tests/test_bounded_tokenize.py); the margin covers it.
        - Unigram (XLM-R's SentencePiece, e5) picks the best segmentation of a whole piece, and a
          run's first token depends on the run's length ("1" * N starts "▁1" or "▁" by N mod 4):
          its prefix ends only before whitespace (`cuts_inside_words` False), so its last piece is
          whole; a text without whitespace after the point the limit needs is tokenised to its end.
        The template is applied to the cut text, so a query instruction or e5's "query: " (before
        the text) is tokenised as in the whole text; template text after `{text}` is added to the
        margin, and special tokens (Qwen3's <|endoftext|>) are added by `frame` after the cut.

        The prefix starts at `FIRST_CHARS_PER_TOKEN` characters per wanted id and grows while
        it yields too few ids, so a text costs at most a few times `room` times the vocabulary's
        longest token (Qwen's: 128 characters), whatever its length; a text not longer than the
        prefix is tokenised whole. Not bounded: a run without whitespace far longer than the limit
        needs under Unigram (the whole run decides its first ids) and under WordPiece when the run
        is one [UNK] word (nothing to cut: the text is one token); both are read to their end.
        """
        contents: list[list[int] | None] = [None] * len(texts)
        margin = CUT_MARGIN_TOKENS + _template_tail_tokens(self.spec, kind)
        wanted = room + margin
        first = wanted * FIRST_CHARS_PER_TOKEN
        whole = [index for index, text in enumerate(texts) if len(text) <= first]
        if whole:
            formatted = [self.spec.format_text(texts[index], kind, instruction) for index in whole]
            for index, ids in zip(whole, self.content_ids(formatted), strict=True):
                contents[index] = ids

        def content(part: str) -> list[int]:
            return self.content_ids([self.spec.format_text(part, kind, instruction)])[0]

        for index, text in enumerate(texts):
            if contents[index] is not None:
                continue
            try:
                end, ids = bounded_prefix(
                    text, content, wanted, self.cuts_inside_words, first, self.max_tokenised_chars
                )
            except InputTooLargeError as error:
                raise error.at(index) from None
            contents[index] = ids if end == len(text) else ids[:wanted]
        return contents  # type: ignore[return-value]

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


def _template_tail_tokens(spec: ModelSpec, kind: InputKind) -> int:
    """An upper bound of the ids the template adds after the text (one per UTF-8 byte: byte-level
    BPE's worst case), which a prefix must hold beyond the margin; 0 for the served models."""
    template = spec.document_template if kind is InputKind.DOCUMENT else spec.query_template
    _, _, tail = template.partition("{text}")
    return len(tail.encode("utf-8"))


def cuts_inside_words(tokenizer) -> bool:
    """Whether a `tokenizers.Tokenizer`'s model keeps a prefix's ids when the cut falls inside a
    word: BPE and WordPiece do (up to the margin), Unigram does not (`bounded_content_ids`)."""
    from tokenizers.models import BPE, WordPiece

    return isinstance(tokenizer.model, BPE | WordPiece)


def bounded_prefix(
    text: str,
    encode: Callable[[str], list[int]],
    wanted: int,
    cuts_inside_words: bool,
    first: int | None = None,
    max_chars: int | None = None,
) -> tuple[int, list[int]]:
    """Where a prefix of `text` worth tokenising ends, and its ids (`encode` of the prefix): the
    whole text (its end, all its ids), or a prefix whose tokenisation holds at least `wanted` ids,
    of which all but the last `CUT_MARGIN_TOKENS` are the whole text's (the reasoning:
    `Encoder.bounded_content_ids`). Shared by the encoders and the rerankers, so a 30 MB input
    costs what a few hundred kilobytes cost wherever it is cut.

    The prefix starts at `first` characters (default `FIRST_CHARS_PER_TOKEN` per wanted id) and
    grows by what its density says is needed, at least doubling; it ends only before whitespace
    unless the tokenizer keeps a prefix's ids when the cut falls inside a word. A prefix longer
    than `max_chars` (a run without whitespace, or one WordPiece [UNK] word, that would have to be
    read to its end) raises InputTooLargeError instead of being tokenised."""
    size = wanted * FIRST_CHARS_PER_TOKEN if first is None else first
    while True:
        end = size if cuts_inside_words else _next_whitespace(text, size)
        if max_chars is not None and min(end, len(text)) > max_chars:
            raise InputTooLargeError(min(end, len(text)), max_chars)
        if end >= len(text):
            return len(text), encode(text)
        ids = encode(text[:end])
        if len(ids) >= wanted:
            return end, ids
        # a text with few ids per character (one WordPiece [UNK] word) goes whole at once
        size = max(2 * size, end + 1, int(end * 1.25 * wanted / max(len(ids), 1)))


_WHITESPACE = re.compile(r"[ \t\n\r]")


def _next_whitespace(text: str, start: int) -> int:
    """Where the first whitespace character at or after `start` is (the text's length if none)."""
    found = _WHITESPACE.search(text, start)
    return found.start() if found else len(text)
