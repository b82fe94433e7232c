"""The gguf backend: a GGUF file run by llama.cpp (llama-cpp-python, the `gguf` extra).

A GGUF file carries its own weights, vocabulary and model facts, so its ModelSpec comes from the
file's metadata (architecture, embedding length, context length, pooling) through the frozen
`FAMILIES` table below, never from branches on names. The Qwen3 rules hold exactly as in the
torch backend: causal attention, instruction on queries only, last-token pooling, and exactly one
trailing <|endoftext|> that embedhub appends itself. Older Qwen3 GGUF conversions do not add it
(their `tokenizer.ggml.add_eos_token` is off or missing), newer ones do; embedhub tokenises
without the file's special tokens and frames every input itself, so both give the same ids, and
says so once when a file would not have added it.

llama.cpp's own tokenizer (the file's vocabulary) turns text into ids; llama.cpp pools inside its
graph (LAST / MEAN / CLS as the spec says) and embedhub applies MRL and normalisation (base.finish).
The context holds one batch: `Settings.max_batch_tokens` tokens (capped at the model's context
length), which is also the longest input this backend accepts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from embedhub.config import Settings
from embedhub.errors import ConfigurationError, InputTooLongError, ModelLoadError
from embedhub.models.base import Encoder
from embedhub.models.batching import plan_batches
from embedhub.models.notices import notice
from embedhub.models.spec import QWEN3_INSTRUCTIONS, QWEN3_QUERY_TEMPLATE, ModelSpec, Pooling

BACKEND = "gguf"
SUFFIX = ".gguf"
EXTRA = "gguf"
MAGIC = b"GGUF"
ENDOFTEXT = "<|endoftext|>"
#: llama.cpp's enum llama_pooling_type, from the file's `{arch}.pooling_type`
GGUF_POOLING: Mapping[int, Pooling] = MappingProxyType({1: "mean", 2: "cls", 3: "last_token"})
GGUF_RANK_POOLING = 4  # a reranker's score head (Qwen3-Reranker conversions), not an embedder
_LLAMA_POOLING = MappingProxyType({"mean": 1, "cls": 2, "last_token": 3})
_LLAMA_CAUSAL, _LLAMA_NON_CAUSAL = 0, 1
MAX_CONTEXT = 32768
#: physical batch (tokens per graph run) for causal models. llama.cpp's qwen3 graph ends in the
#: LM head even for embeddings, so each run holds logits over the whole vocabulary for every token
#: (512 x 151,669 floats = 310 MB; the full 16,384-token context would need 10 GB). A long input
#: spans several runs; the pooled last token comes from the run that holds it. Bidirectional
#: (encoder) models need every sequence in one run: their physical batch is the whole context.
DECODER_UBATCH = 512
GGML_LOG_ERROR = 4  # enum ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT


@dataclass(frozen=True)
class Family:
    """How embedhub runs one GGUF architecture as an embedder.

    `pooling` None means: the file's `{arch}.pooling_type`, else `default_pooling`.
    `suffix_token` is appended to every input by embedhub itself, exactly once (Qwen3's
    <|endoftext|>); without it the file's own special tokens frame the input ([CLS] ... [SEP]).
    """

    architecture: str  # ModelSpec.architecture: "decoder" (causal) or "encoder" (bidirectional)
    pooling: Pooling | None = None
    default_pooling: Pooling = "mean"
    suffix_token: str | None = None
    query_template: str = "{text}"
    instructions: Mapping = field(default_factory=lambda: MappingProxyType({}))
    mrl_min_dimensions: int | None = None
    languages: str = "see the model card"
    #: Unicode normalisation the family's Hugging Face tokenizer applies before BPE; GGUF does
    #: not record it and llama.cpp's BPE does not apply it, so embedhub does
    unicode_normalization: str | None = None


QWEN3 = Family(
    architecture="decoder",
    pooling="last_token",
    suffix_token=ENDOFTEXT,
    query_template=QWEN3_QUERY_TEMPLATE,
    instructions=QWEN3_INSTRUCTIONS,
    mrl_min_dimensions=32,
    languages="multilingual",
    unicode_normalization="NFC",  # Qwen2/Qwen3 tokenizer.json: "normalizer": {"type": "NFC"}
)
BERT = Family(architecture="encoder")

#: GGUF `general.architecture` -> Family. Add an architecture here, not a branch elsewhere.
FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "qwen3": QWEN3,
        "bert": BERT,
        "nomic-bert": BERT,
        "jina-bert-v2": BERT,
        "jina-bert-v3": BERT,
        "modern-bert": BERT,
    }
)


def is_gguf_file(path: Path) -> bool:
    """A file named *.gguf (the magic bytes are checked when it is read)."""
    return path.suffix.lower() == SUFFIX and path.is_file()


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as error:
        raise ConfigurationError(
            f"running a .gguf file needs llama-cpp-python, which is not installed ({error}); "
            f"pip install 'embedhub[{EXTRA}]' (or `make install-gguf`), or pass a transformers model folder"
        ) from None
    _route_logs(llama_cpp)
    return llama_cpp


_LOGGER = logging.getLogger("embedhub.llama_cpp")
_log_callback = None  # the ctypes callback must outlive every llama.cpp call


def _route_logs(llama_cpp) -> None:
    """llama.cpp's log lines go to the `embedhub.llama_cpp` logger: errors as errors, the rest
    (every load prints dozens of lines, some alarming but harmless) at debug level.

    llama-cpp-python's own callback reads ggml's old level numbers (ERROR was 3), so with this
    llama.cpp it printed warnings as errors even with verbose=False."""
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            _LOGGER.log(logging.ERROR if level == GGML_LOG_ERROR else logging.DEBUG, message)

    _log_callback = forward
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))


def _check_magic(path: Path) -> None:
    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise ModelLoadError(f"{path} is not a GGUF file (it does not start with {MAGIC!r})")


@dataclass(frozen=True)
class GgufFacts:
    """What a GGUF file says about itself, read by llama.cpp (vocabulary only, no weights)."""

    metadata: Mapping[str, str]
    vocabulary_size: int
    special_ids: Mapping[str, int]  # special token text -> id, for the tokens a Family names

    @property
    def architecture(self) -> str:
        return self.metadata.get("general.architecture", "")

    def number(self, key: str, default: int | None = None) -> int | None:
        value = self.metadata.get(f"{self.architecture}.{key}")
        return default if value in (None, "") else int(float(value))


def _meta_string(function, *arguments) -> str:
    size = 256
    while True:
        buffer = ctypes.create_string_buffer(size)
        written = function(*arguments, buffer, size)
        if written < size:
            return buffer.value.decode("utf-8", errors="replace") if written >= 0 else ""
        size = written + 1


def read_facts(path: Path) -> GgufFacts:
    """The file's metadata and vocabulary facts (loads the vocabulary only: fast, no weights)."""
    _check_magic(path)
    llama_cpp = _llama_cpp()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
    if not model:
        raise ModelLoadError(f"llama.cpp could not read {path} (a corrupt file, or an architecture it lacks)")
    try:
        metadata = {
            _meta_string(llama_cpp.llama_model_meta_key_by_index, model, index): _meta_string(
                llama_cpp.llama_model_meta_val_str_by_index, model, index
            )
            for index in range(llama_cpp.llama_model_meta_count(model))
        }
        vocab = llama_cpp.llama_model_get_vocab(model)
        special = {}
        for family in FAMILIES.values():
            if family.suffix_token and family.suffix_token not in special:
                ids = _tokenize(llama_cpp, vocab, family.suffix_token, add_special=False, parse_special=True)
                if len(ids) == 1:
                    special[family.suffix_token] = ids[0]
        return GgufFacts(
            MappingProxyType(metadata), int(llama_cpp.llama_vocab_n_tokens(vocab)), MappingProxyType(special)
        )
    finally:
        llama_cpp.llama_model_free(model)


def _tokenize(llama_cpp, vocab, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
    data = text.encode("utf-8")
    room = len(data) + 8
    tokens = (llama_cpp.llama_token * room)()
    count = llama_cpp.llama_tokenize(vocab, data, len(data), tokens, room, add_special, parse_special)
    if count < 0:  # more tokens than bytes + 8 (cannot happen for byte-level BPE; be safe)
        room = -count
        tokens = (llama_cpp.llama_token * room)()
        count = llama_cpp.llama_tokenize(vocab, data, len(data), tokens, room, add_special, parse_special)
    return list(tokens[:count])


def spec_from_facts(path: Path, facts: GgufFacts) -> ModelSpec:
    """The ModelSpec of a GGUF file: model facts from its metadata, conventions from FAMILIES."""
    family = FAMILIES.get(facts.architecture)
    if family is None:
        raise ModelLoadError(
            f"{path.name} is a {facts.architecture or 'unknown'!r} GGUF model; embedhub runs these "
            f"GGUF architectures as embedders: {', '.join(FAMILIES)}"
        )
    if facts.number("pooling_type") == GGUF_RANK_POOLING:
        raise ModelLoadError(
            f"{path.name} is a reranker (its {facts.architecture}.pooling_type is 'rank'), not an "
            "embedding model; pass an embedding model's GGUF file"
        )
    dimensions = facts.number("embedding_length")
    if not dimensions:
        raise ModelLoadError(f"{path.name} has no {facts.architecture}.embedding_length in its metadata")
    pooling = family.pooling or GGUF_POOLING.get(facts.number("pooling_type", 0), family.default_pooling)
    suffix: tuple[int, ...] = ()
    if family.suffix_token:
        if family.suffix_token not in facts.special_ids:
            raise ModelLoadError(
                f"{path.name}'s vocabulary has no single {family.suffix_token} token, which every "
                f"{facts.architecture} embedding input must end with"
            )
        suffix = (facts.special_ids[family.suffix_token],)
    quantisation = facts.metadata.get("general.file_type", "?")
    return ModelSpec(
        name=path.stem,
        architecture=family.architecture,  # type: ignore[arg-type]
        pooling=pooling,
        dimensions=dimensions,
        max_tokens=min(facts.number("context_length", 512) or 512, MAX_CONTEXT),
        mrl_min_dimensions=min(family.mrl_min_dimensions, dimensions) if family.mrl_min_dimensions else None,
        query_template=family.query_template,
        instructions=family.instructions,
        suffix_token_ids=suffix,
        languages=family.languages,
        description=(
            f"GGUF file ({facts.architecture}, {dimensions} dims, llama.cpp file type {quantisation}) "
            f"run by llama.cpp: {path.name}"
        ),
    )


def spec_from_gguf(path: Path) -> ModelSpec:
    return spec_from_facts(path, read_facts(path))


class GgufEncoder(Encoder):
    """A GGUF embedding model in a llama.cpp context; one forward pass per planned batch."""

    backend = BACKEND

    def __init__(self, spec: ModelSpec, path: Path, settings: Settings) -> None:
        from llama_cpp import Llama

        llama_cpp = _llama_cpp()
        self.spec = spec
        self.path = path
        self._llama_cpp = llama_cpp
        context = max(1, min(spec.max_tokens, settings.max_batch_tokens))
        threads = settings.threads or os.cpu_count() or 1
        options: dict[str, Any] = dict(
            embedding=True,
            n_ctx=context,
            n_batch=context,
            n_ubatch=context if spec.architecture == "encoder" else min(context, DECODER_UBATCH),
            pooling_type=_LLAMA_POOLING[spec.pooling],
            attention_type=_LLAMA_CAUSAL if spec.architecture == "decoder" else _LLAMA_NON_CAUSAL,
            flash_attn=True,  # attention without the context x context score matrix
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=0,
            verbose=False,
        )
        try:
            self.llama = Llama(model_path=str(path), **options)
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"llama.cpp could not load {path}: {error}") from error
        self.context_tokens = context
        architecture = self.llama.metadata.get("general.architecture", "")
        if architecture not in FAMILIES:
            raise ModelLoadError(
                f"{path.name} is a {architecture!r} GGUF model; embedhub runs: {', '.join(FAMILIES)}"
            )
        self.family = FAMILIES[architecture]
        self.max_sequences = max(1, int(llama_cpp.llama_n_seq_max(self.llama.ctx)))
        self.max_batch_size = max(1, min(settings.max_batch_size, self.max_sequences))
        self._vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self._vocabulary_size = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        hidden = int(llama_cpp.llama_model_n_embd(self.llama.model))
        if hidden != spec.dimensions:
            raise ModelLoadError(f"{path} embeds into {hidden} dims, but its spec says {spec.dimensions}")
        self._batch = llama_cpp.llama_batch_init(context, 0, 1)
        # one llama.cpp context and batch: the server's queue and a knowledge-base job may embed
        # from two threads at once, and llama_decode on one context is not thread-safe
        self._lock = threading.Lock()
        probe = "hello"
        bare = self._ids(probe, add_special=False)
        with_file_specials = self._ids(probe, add_special=True)
        if spec.suffix_token_ids:
            self.prefix_ids, self.suffix_ids = (), tuple(spec.suffix_token_ids)
            #: whether llama.cpp, left to the file's settings, would end inputs with the suffix
            self.file_adds_suffix = with_file_specials[-len(self.suffix_ids) :] == list(self.suffix_ids)
            if not self.file_adds_suffix:
                notice(
                    f"{path.name} does not add {ENDOFTEXT} to its inputs (tokenizer.ggml.add_eos_token "
                    "is off or missing: an older conversion); embedhub appends it itself, exactly once"
                )
        else:
            self.prefix_ids, self.suffix_ids = _split_framing(bare, with_file_specials)
            self.file_adds_suffix = True

    @property
    def max_tokens(self) -> int:
        return self.context_tokens

    @property
    def vocabulary_size(self) -> int:
        return self._vocabulary_size

    def _ids(self, text: str, *, add_special: bool) -> list[int]:
        if self.family.unicode_normalization:
            text = unicodedata.normalize(self.family.unicode_normalization, text)
        return _tokenize(self._llama_cpp, self._vocab, text, add_special=add_special, parse_special=True)

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        # parse_special: a literal "<|endoftext|>" in the text is that token, as in the tokenizers
        # library the torch backend uses, so both backends see the same ids
        return [self._ids(text, add_special=False) for text in texts]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        get_text = self._llama_cpp.llama_vocab_get_text
        return [get_text(self._vocab, int(i)).decode("utf-8", errors="replace") for i in ids]

    def embed_token_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(batch), self.native_dims), dtype=np.float32)
        lengths = [len(ids) for ids in batch]
        for index, length in enumerate(lengths):
            if not 0 < length <= self.context_tokens:  # frame() keeps inputs within max_tokens
                raise InputTooLongError(index, length, self.context_tokens)
        with self._lock:
            for indices in plan_batches(lengths, self.context_tokens, self.max_batch_size):
                out[indices] = self._run([batch[i] for i in indices])
        return out

    def _run(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """One llama_decode over several sequences; llama.cpp pools each one (spec.pooling)."""
        llama_cpp, ctx, batch = self._llama_cpp, self.llama.ctx, self._batch
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        position = 0
        for sequence, ids in enumerate(sequences):
            for offset, token in enumerate(ids):
                batch.token[position] = token
                batch.pos[position] = offset
                batch.n_seq_id[position] = 1
                batch.seq_id[position][0] = sequence
                batch.logits[position] = True  # embeddings need every token as an output
                position += 1
        batch.n_tokens = position
        status = llama_cpp.llama_decode(ctx, batch)
        if status != 0:
            raise ModelLoadError(
                f"llama.cpp failed to run a batch of {len(sequences)} inputs (code {status})"
            )
        dims = self.native_dims
        out = np.empty((len(sequences), dims), dtype=np.float32)
        for sequence in range(len(sequences)):
            pointer = llama_cpp.llama_get_embeddings_seq(ctx, sequence)
            if not pointer:
                raise ModelLoadError("llama.cpp returned no pooled embedding (is the file an embedder?)")
            out[sequence] = np.ctypeslib.as_array(pointer, shape=(dims,))
        return out

    def close(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if getattr(self, "_batch", None) is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        llama = getattr(self, "llama", None)
        if llama is not None:
            llama.close()
            self.llama = None


def _split_framing(bare: list[int], full: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special ids llama.cpp puts around content for this file (e.g. [CLS] ... [SEP])."""
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return tuple(full[:start]), tuple(full[start + len(bare) :])
    raise ModelLoadError("cannot tell the GGUF tokenizer's special tokens apart from content")


def load_gguf(spec: ModelSpec, path: Path, settings: Settings) -> GgufEncoder:
    return GgufEncoder(spec, path, settings)
