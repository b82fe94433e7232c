"""Rerankers: one contract, frozen specs in a registry keyed by name, and the two families that run.

A reranker scores (query, document) pairs; higher is more relevant. Work is split as for
encoders, so a queue can merge pairs from concurrent requests: `tokenize_pairs` builds the exact
model inputs, `score_inputs` runs any batch of them. `score_pairs` (batch-first) and `score`
(one query, many passages: the knowledge base's hook) chain the two.

- Qwen3-Reranker (0.6B / 4B / 8B) exactly as its model card: the system prompt and the
  `<Instruct>: ... <Query>: ... <Document>: ...` template between a fixed prefix and suffix (each
  tokenised on its own), the pair body cut so prefix + suffix always fit in 8192 tokens, left
  padding, and the score P("yes") = softmax over the ("no", "yes") logits of the last position.
- BERT-style cross-encoders from any local sentence-transformers CrossEncoder folder: the
  tokenizer's own pair template (token type ids included), one logit, the activation the folder's
  config names (sigmoid when it names none, as sentence-transformers does).

Weights come from local folders only: a folder path, or a registry name found in
`Settings.model_dirs` or the local Hugging Face cache (downloads only when allowed).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from embedhub.config import Settings
from embedhub.errors import (
    ConfigurationError,
    InputTooLargeError,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    UnknownModelError,
)
from embedhub.models.base import CUT_MARGIN_TOKENS, FIRST_CHARS_PER_TOKEN, bounded_prefix, cuts_inside_words
from embedhub.models.batching import plan_batches

RerankerFamily = Literal["qwen3", "cross-encoder"]

QWEN3_RERANK_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
QWEN3_RERANK_PREFIX = f"<|im_start|>system\n{QWEN3_RERANK_SYSTEM}<|im_end|>\n<|im_start|>user\n"
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_RERANK_TEMPLATE = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
QWEN3_RERANK_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
#: the model card's max_length (pairs are cut to it, prefix and suffix included)
QWEN3_RERANK_MAX_TOKENS = 8192
MARKER_FILE = "embedhub.json"


@dataclass(frozen=True)
class RerankerSpec:
    """What embedhub needs to run a reranker as its authors intended. `template` formats the pair
    body (Qwen3: instruction, query, document); `prefix` / `suffix` surround it, tokenised on their
    own. `default_backend` is what `auto` runs: bfloat16 for Qwen3 (the architecture Qwen3-Embedding
    was measured on, docs/backends.md, and the dtype Qwen publishes), float32 for cross-encoders."""

    name: str
    family: RerankerFamily
    max_tokens: int
    hub_id: str | None = None
    folder_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    system_prompt: str = ""
    prefix: str = ""
    suffix: str = ""
    template: str = ""
    default_instruction: str | None = None
    default_backend: str = "torch"
    random_weights: bool = False
    license: str = ""
    description: str = ""

    @property
    def supports_instructions(self) -> bool:
        return "{instruction}" in self.template

    def format_pair(self, query: str, document: str, instruction: str | None) -> str:
        """The pair body as the model card builds it (`format_instruction`)."""
        if instruction is not None and not self.supports_instructions:
            raise InvalidInputError(f"reranker {self.name} takes no instruction; drop it")
        chosen = self.default_instruction if instruction is None else instruction
        return self.template.format(instruction=chosen, query=query, doc=document)


def qwen3_reranker_spec(name: str, **facts) -> RerankerSpec:
    """A Qwen3-Reranker: the model card's prompt, template, instruction and length."""
    defaults = dict(
        family="qwen3",
        max_tokens=QWEN3_RERANK_MAX_TOKENS,
        system_prompt=QWEN3_RERANK_SYSTEM,
        prefix=QWEN3_RERANK_PREFIX,
        suffix=QWEN3_RERANK_SUFFIX,
        template=QWEN3_RERANK_TEMPLATE,
        default_instruction=QWEN3_RERANK_INSTRUCTION,
        default_backend="torch-bf16",
    )
    return RerankerSpec(name=name, **(defaults | facts))


def _qwen3(size: str) -> RerankerSpec:
    name = f"Qwen3-Reranker-{size}"
    return qwen3_reranker_spec(
        name,
        hub_id=f"Qwen/{name}",
        folder_names=(name, f"Qwen--{name}", f"models--Qwen--{name}"),
        aliases=(name.lower(),),
        license="Apache-2.0",
        description=f"Qwen3 reranker, {size} parameters: P(yes) after the model card's prompt.",
    )


QWEN3_RERANKER_0_6B = _qwen3("0.6B")
QWEN3_RERANKER_4B = _qwen3("4B")
QWEN3_RERANKER_8B = _qwen3("8B")


class RerankerRegistry:
    """Reranker specs by name, hub id and alias (case-insensitive)."""

    def __init__(self, specs: Sequence[RerankerSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._index = {
            key.lower(): spec for spec in specs for key in (spec.name, spec.hub_id, *spec.aliases) if key
        }

    def find(self, name: str) -> RerankerSpec | None:
        return self._index.get(name.lower())

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self):
        return iter(self._specs.values())


RERANKERS = RerankerRegistry((QWEN3_RERANKER_0_6B, QWEN3_RERANKER_4B, QWEN3_RERANKER_8B))


@dataclass(frozen=True)
class PairTokens:
    """One pair as the model receives it; `type_ids` for models with segment embeddings (BERT).
    `truncated` says the pair was cut to fit. Its length is what batching counts."""

    ids: tuple[int, ...]
    type_ids: tuple[int, ...] | None = None
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.ids)


class Reranker(ABC):
    """A loaded reranker."""

    spec: RerankerSpec
    #: how the weights run here (torch, torch-bf16), shown by /v1/models
    backend: str = "torch"
    max_batch_tokens: int = 16384
    max_batch_size: int = 64
    #: the most characters of one pair tokenised to find its cut (see `Encoder.max_tokenised_chars`)
    max_tokenised_chars: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    @abstractmethod
    def tokenize_pairs(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        truncate: bool = False,
        max_tokens: int | None = None,
    ) -> list[PairTokens]:
        """The exact model input of each (query, document) pair. Over `max_tokens` (default: the
        model's limit) a pair is an error naming its index, or cut when `truncate`."""

    @abstractmethod
    def run_padded(self, batch: Sequence[PairTokens]) -> np.ndarray:
        """Scores (float32, one per pair) of one batch, run as a single forward pass."""

    def score_inputs(self, inputs: Sequence[PairTokens]) -> np.ndarray:
        """Scores of any number of pairs, run in token-budget batches (in input order)."""
        scores = np.zeros(len(inputs), dtype=np.float32)
        for indices in plan_batches([len(p) for p in inputs], self.max_batch_tokens, self.max_batch_size):
            scores[indices] = self.run_padded([inputs[i] for i in indices])
        return scores

    def score_pairs(
        self,
        query: str,
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        truncate: bool = True,
    ) -> np.ndarray:
        """Batch-first scoring of one query against many documents."""
        if not documents:
            return np.zeros(0, dtype=np.float32)
        inputs = self.tokenize_pairs(query, documents, instruction=instruction, truncate=truncate)
        return self.score_inputs(inputs)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """The knowledge base's reranker hook (kb/search.py `Reranker`): over-long pairs are cut."""
        return [float(value) for value in self.score_pairs(query, passages)]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


def _check_texts(query: str, documents: Sequence[str]) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("the query is empty; reranking needs a query")
    for index, document in enumerate(documents):
        if not isinstance(document, str):
            raise InvalidInputError(f"document {index} is not a string: {type(document).__name__}")


def bounded_text(
    tokenizer, text: str, wanted: int, inside_words: bool, max_chars: int | None = None
) -> tuple[str, int | None]:
    """`text`, or the prefix of it that a cut to fewer than `wanted - CUT_MARGIN_TOKENS` ids can
    use, with that prefix's id count (None when the text is kept whole). The prefix's first ids are
    those of the whole text's tokenisation (models/base.py `bounded_content_ids` says why), so
    tokenising and cutting the prefix gives the ids that tokenising and cutting the whole text
    gives, at the cost of a few hundred kilobytes whatever the text's length."""
    if len(text) <= wanted * FIRST_CHARS_PER_TOKEN:
        return text, None
    end, ids = bounded_prefix(
        text,
        lambda part: tokenizer.encode(part, add_special_tokens=False).ids,
        wanted,
        inside_words,
        max_chars=max_chars,
    )
    return (text, None) if end == len(text) else (text[:end], len(ids))


def too_long(index: int, tokens: int, limit: int, cut_sides: int) -> InputTooLongError:
    """The error for a pair over the limit; `tokens` counted on `cut_sides` prefixes (texts far
    over the limit, see `bounded_text`) is a lower bound: of each prefix's ids all but the last
    `CUT_MARGIN_TOKENS` are the whole text's, and the text goes on after them."""
    if not cut_sides:
        return InputTooLongError(index, tokens, limit)
    return InputTooLongError(index, tokens - cut_sides * CUT_MARGIN_TOKENS, limit, at_least=True)


class Cutter:
    """A copy of a tokenizer that cuts over-long inputs the tokenizer's own way (`longest_first`,
    special tokens kept). Truncation is tokenizer state, so it lives on a copy behind a lock: the
    main tokenizer is shared by threads that must never see it switched on."""

    def __init__(self, tokenizer) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.lock = threading.Lock()

    def encode_batch(self, inputs: list, max_length: int) -> list:
        with self.lock:
            self.tokenizer.enable_truncation(max_length, strategy="longest_first")
            return self.tokenizer.encode_batch(inputs)


def _torch_dtype(spec: RerankerSpec, settings: Settings):
    """float32 for backend torch (or Settings.dtype), bfloat16 for torch-bf16; any other backend
    name (auto, and the embedding-only int8 / ONNX / GGUF ones) means the spec's default, with
    bfloat16 only where the CPU runs it natively (as `auto` decides for encoders)."""
    import torch

    from embedhub.models.backends import BACKENDS, check_kernels, native_bfloat16
    from embedhub.models.cpu import detect_cpu

    requested = settings.backend.strip().lower()
    if requested == "torch":
        name = settings.dtype
    elif requested == "torch-bf16":
        check_kernels(BACKENDS["torch-bf16"], detect_cpu(settings.cpu_class))  # never silently 30x slower
        name = "bfloat16"
    else:
        bf16 = spec.default_backend == "torch-bf16" and native_bfloat16(settings)
        name = "bfloat16" if bf16 else "float32"
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name], name


def _open_tokenizer(reranker: Reranker, folder: Path, missing: str) -> None:
    """The folder's fast tokenizer, untouched by padding or truncation (the reranker builds its
    inputs itself), and a `Cutter` over it; `missing` says what the error should name."""
    from tokenizers import Tokenizer

    if not (folder / "tokenizer.json").exists():
        raise ModelLoadError(f"{folder} has no tokenizer.json{missing}")
    reranker.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reranker.tokenizer.no_truncation()
    reranker.tokenizer.no_padding()
    reranker.cutter = Cutter(reranker.tokenizer)
    reranker.cuts_inside_words = cuts_inside_words(reranker.tokenizer)


def _load_weights(model_class, folder: Path, dtype, what: str, **options):
    try:
        return model_class.from_pretrained(str(folder), dtype=dtype, **options).eval()
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load {what} weights from {folder}: {error}") from error


def _set_runtime(
    reranker: Reranker, settings: Settings, dtype_name: str, pad: int | None, pad_token: str
) -> None:
    """What both torch rerankers keep for scoring: the pad id (the config's, or `pad_token`'s),
    the backend name of the dtype, the batch limits, and torch itself (imported lazily)."""
    import torch

    reranker.pad_id = pad if pad is not None else (reranker.tokenizer.token_to_id(pad_token) or 0)
    reranker.backend = "torch" if dtype_name == "float32" else "torch-bf16"
    reranker.max_batch_tokens = settings.max_batch_tokens
    reranker.max_batch_size = settings.max_batch_size
    reranker.max_tokenised_chars = settings.max_input_chars
    reranker.torch = torch


class Qwen3Reranker(Reranker):
    """Qwen3-Reranker: a causal LM judged by P("yes") over P("no") at the answer position."""

    def __init__(self, spec: RerankerSpec, folder: Path, settings: Settings) -> None:
        from transformers import AutoModelForCausalLM

        self.spec = spec
        self.folder = folder
        _open_tokenizer(self, folder, "; copy the model's tokenizer files there")
        self.yes_id = self.tokenizer.token_to_id("yes")
        self.no_id = self.tokenizer.token_to_id("no")
        if self.yes_id is None or self.no_id is None:
            raise ModelLoadError(f"{folder} has no 'yes' / 'no' tokens: not a Qwen3-Reranker tokenizer")
        self.prefix_ids = tuple(self.tokenizer.encode(spec.prefix, add_special_tokens=False).ids)
        self.suffix_ids = tuple(self.tokenizer.encode(spec.suffix, add_special_tokens=False).ids)
        dtype, dtype_name = _torch_dtype(spec, settings)
        self.model = _load_weights(
            AutoModelForCausalLM, folder, dtype, "reranker", attn_implementation="sdpa"
        )
        # Only two logits are ever read: their rows of the output head, in float32.
        head = self.model.get_output_embeddings().weight
        self.answer_rows = head[[self.no_id, self.yes_id]].detach().float().clone()
        _set_runtime(self, settings, dtype_name, self.model.config.pad_token_id, "<|endoftext|>")

    def tokenize_pairs(self, query, documents, *, instruction=None, truncate=False, max_tokens=None):
        _check_texts(query, documents)
        limit = min(max_tokens or self.max_tokens, self.max_tokens)
        room = limit - len(self.prefix_ids) - len(self.suffix_ids)
        if room < 1:
            raise InvalidInputError(
                f"a token limit of {limit} leaves no room for the pair between the prompt"
            )
        bodies = [self.spec.format_pair(query, document, instruction) for document in documents]
        frame = len(self.prefix_ids) + len(self.suffix_ids)
        # A body far longer than `room` tokens is tokenised only as far as a cut to `room` needs
        # (`bounded_text`; the query inside it too), whether it is cut or refused. What is
        # tokenised is then what the model card's `tokenizer(pairs, truncation="longest_first",
        # max_length=room)` does: with the tokenizer's own special tokens (Qwen3's adds none) and,
        # when too long, cut by the tokenizer itself to `room`.
        kept = []
        for index, body in enumerate(bodies):
            try:
                wanted = room + CUT_MARGIN_TOKENS
                limit_chars = self.max_tokenised_chars
                kept.append(bounded_text(self.tokenizer, body, wanted, self.cuts_inside_words, limit_chars))
            except InputTooLargeError as error:
                raise error.at(index) from None
        texts = [text for text, _ in kept]
        encoded = self.tokenizer.encode_batch(texts)
        over = [index for index, encoding in enumerate(encoded) if len(encoding.ids) > room]
        if over and not truncate:
            first = over[0]
            raise too_long(first, len(encoded[first].ids) + frame, limit, int(kept[first][1] is not None))
        if over:
            for index, encoding in zip(
                over, self.cutter.encode_batch([texts[i] for i in over], room), strict=True
            ):
                encoded[index] = encoding
        cut = set(over)
        return [
            PairTokens((*self.prefix_ids, *encoding.ids, *self.suffix_ids), truncated=index in cut)
            for index, encoding in enumerate(encoded)
        ]

    def run_padded(self, batch: Sequence[PairTokens]) -> np.ndarray:
        torch = self.torch
        width = max(len(pair) for pair in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, pair in enumerate(batch):  # left padding: the last position is every row's answer
            ids[row, width - len(pair) :] = torch.tensor(pair.ids, dtype=torch.long)
            mask[row, width - len(pair) :] = 1
        with torch.inference_mode():
            hidden = self.model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1, :]
            logits = hidden.float() @ self.answer_rows.T  # columns: no, yes
            return torch.softmax(logits, dim=1)[:, 1].numpy().astype(np.float32)


_ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.Identity": "identity",
}


class CrossEncoderReranker(Reranker):
    """A BERT-style cross-encoder (AutoModelForSequenceClassification with one label)."""

    def __init__(self, spec: RerankerSpec, folder: Path, settings: Settings) -> None:
        from transformers import AutoModelForSequenceClassification

        self.spec = spec
        self.folder = folder
        _open_tokenizer(self, folder, " (a fast tokenizer file) for the cross-encoder")
        dtype, dtype_name = _torch_dtype(spec, settings)
        self.model = _load_weights(AutoModelForSequenceClassification, folder, dtype, "cross-encoder")
        config = self.model.config
        if int(config.num_labels) != 1:
            raise ModelLoadError(
                f"{folder} is a classifier with {config.num_labels} labels; a reranker has one logit"
            )
        activation = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn")
        activation = activation or getattr(config, "sbert_ce_default_activation_function", None)
        if activation is not None and activation not in _ACTIVATIONS:
            raise ModelLoadError(
                f"{folder} names the activation {activation!r}, which embedhub does not apply"
            )
        self.activation = _ACTIVATIONS.get(activation, "sigmoid")
        self.uses_type_ids = int(getattr(config, "type_vocab_size", 1) or 1) > 1
        _set_runtime(self, settings, dtype_name, config.pad_token_id, "[PAD]")

    def tokenize_pairs(self, query, documents, *, instruction=None, truncate=False, max_tokens=None):
        _check_texts(query, documents)
        if instruction is not None:
            raise InvalidInputError(
                f"reranker {self.name} is a cross-encoder and takes no instruction; drop it"
            )
        limit = min(max_tokens or self.max_tokens, self.max_tokens)
        pairs, cut_sides = self.bounded_pairs(query, documents, limit)
        full = self.tokenizer.encode_batch(pairs)
        over = [index for index, encoding in enumerate(full) if len(encoding.ids) > limit]
        if over and not truncate:
            raise too_long(over[0], len(full[over[0]].ids), limit, cut_sides[over[0]])
        if over:
            cut = self.cutter.encode_batch([pairs[i] for i in over], limit)
            for index, encoding in zip(over, cut, strict=True):
                full[index] = encoding
        return [
            PairTokens(tuple(encoding.ids), tuple(encoding.type_ids), truncated=index in over)
            for index, encoding in enumerate(full)
        ]

    def bounded_pairs(
        self, query: str, documents: Sequence[str], limit: int
    ) -> tuple[list[tuple[str, str]], list[int]]:
        """The (query, document) texts to tokenise, each side far over `limit` tokens replaced by
        the prefix a cut can use (`bounded_text`), and how many sides of each pair were so cut.

        `longest_first` keeps at most `limit` ids of each side and decides the cut from the two
        sides' lengths, which a prefix keeps over `limit` when its text is; one thing depends on
        which side is longer in full: when both sides are halved and the room is odd, the longer
        side keeps the extra id. So the prefixes are chosen in the same order as the whole texts:
        a cut side facing a whole one grows past it; two cut sides (the query itself over the limit)
        are counted whole once, when the room is odd. The whole pair is never handed to the cutter
        when a side is long: its overflow pieces of two long sides multiply."""
        wanted = limit + CUT_MARGIN_TOKENS
        odd_room = (limit - self.tokenizer.num_special_tokens_to_add(True)) % 2 == 1
        counts: dict[str, int] = {}

        def count(text: str) -> int:
            if text not in counts:
                counts[text] = len(self.tokenizer.encode(text, add_special_tokens=False).ids)
            return counts[text]

        def side(text: str, at_least: int) -> tuple[str, int | None]:
            limit_chars = self.max_tokenised_chars
            return bounded_text(self.tokenizer, text, at_least, self.cuts_inside_words, limit_chars)

        query_side = side(query, wanted)
        pairs, cut_sides = [], []
        for document in documents:
            query_text, query_ids = query_side
            document_text, document_ids = side(document, wanted)
            if query_ids is not None and document_ids is None:
                # the query's prefix over the whole document: the query is longer in full too
                query_text, query_ids = side(query, max(wanted, count(document) + CUT_MARGIN_TOKENS))
            elif document_ids is not None and query_ids is None:
                document_text, document_ids = side(document, max(wanted, count(query) + CUT_MARGIN_TOKENS))
            elif query_ids is not None and document_ids is not None and odd_room:
                if count(query) > count(document) and query_ids <= document_ids:
                    query_text, query_ids = side(query, document_ids + 1)
                elif count(query) <= count(document) and query_ids > document_ids:
                    document_text, document_ids = side(document, query_ids)
            pairs.append((query_text, document_text))
            cut_sides.append(int(query_ids is not None) + int(document_ids is not None))
        return pairs, cut_sides

    def run_padded(self, batch: Sequence[PairTokens]) -> np.ndarray:
        torch = self.torch
        width = max(len(pair) for pair in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        types = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, pair in enumerate(batch):
            ids[row, : len(pair)] = torch.tensor(pair.ids, dtype=torch.long)
            types[row, : len(pair)] = torch.tensor(pair.type_ids or (0,) * len(pair), dtype=torch.long)
            mask[row, : len(pair)] = 1
        extra = {"token_type_ids": types} if self.uses_type_ids else {}
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, **extra).logits[:, 0].float()
            scores = torch.sigmoid(logits) if self.activation == "sigmoid" else logits
        return scores.numpy().astype(np.float32)


def reranker_spec_from_folder(folder: Path) -> RerankerSpec:
    """A reranker's spec from its folder: Qwen3-Reranker (a Qwen3 causal LM) or a cross-encoder."""
    from embedhub.models.loading import read_json  # imports torch: not at module import

    config = read_json(folder / "config.json")
    if not config:
        raise ModelLoadError(f"{folder} has no config.json: not a model folder")
    marker = read_json(folder / MARKER_FILE)
    random_weights = bool(marker.get("random_weights", False))
    architectures = config.get("architectures") or []
    if config.get("model_type") == "qwen3":
        if not any(name.endswith("ForCausalLM") for name in architectures):
            raise ModelLoadError(
                f"{folder} is a Qwen3 model without a language-model head ({', '.join(architectures)}): "
                "an embedding model, not Qwen3-Reranker"
            )
        embedding = _embedding_model_sign(folder, config)
        if embedding:
            raise ModelLoadError(
                f"{folder} is a Qwen3 embedding model ({embedding}), not Qwen3-Reranker: both are Qwen3 "
                "causal LMs, but an embedding model scores nothing. Pass a Qwen3-Reranker folder"
            )
        known = RERANKERS.find(folder.name) or RERANKERS.find(str(config.get("_name_or_path", "")))
        if known is not None:
            return dataclasses.replace(known, random_weights=random_weights)
        limit = int(config.get("max_position_embeddings", QWEN3_RERANK_MAX_TOKENS))
        return qwen3_reranker_spec(
            marker.get("name") or folder.name,
            max_tokens=min(limit, QWEN3_RERANK_MAX_TOKENS),
            random_weights=random_weights,
            description=marker.get("description", "Qwen3-Reranker (local folder)"),
        )
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        st_config = read_json(folder / "sentence_bert_config.json")
        limit = st_config.get("max_seq_length") or config.get("max_position_embeddings", 512)
        return RerankerSpec(
            name=marker.get("name") or folder.name,
            family="cross-encoder",
            max_tokens=int(limit),
            random_weights=random_weights,
            description="cross-encoder (local folder)",
        )
    raise ModelLoadError(
        f"{folder} is neither Qwen3-Reranker (a Qwen3 causal LM) nor a cross-encoder "
        f"(a *ForSequenceClassification model); its architectures: {', '.join(architectures) or 'none'}"
    )


def _embedding_model_sign(folder: Path, config: dict) -> str | None:
    """Why a Qwen3 causal-LM folder is an embedding model, or None. Qwen3-Embedding ships the same
    architecture as Qwen3-Reranker (Qwen3ForCausalLM); its sentence-transformers pooling module and
    its name tell them apart."""
    from embedhub.models.loading import read_json
    from embedhub.models.registry import REGISTRY

    modules = read_json(folder / "modules.json")
    if isinstance(modules, list) and any("Pooling" in str(module.get("type", "")) for module in modules):
        return "its modules.json has a pooling layer"
    for name in (folder.name, str(config.get("_name_or_path", ""))):
        spec = REGISTRY.find(name) if name else None
        if spec is not None:
            return f"its name is that of {spec.name}"
    return None


def resolve_reranker(reference: str, settings: Settings) -> tuple[RerankerSpec, Path]:
    """A reranker's spec and weights folder, from a folder path or a registry name."""
    expanded = Path(os.path.expanduser(reference))
    if expanded.is_dir():
        folder = expanded.resolve()
        return reranker_spec_from_folder(folder), folder
    spec = RERANKERS.find(reference)
    if spec is None:
        raise UnknownModelError(
            f"unknown reranker {reference!r}; choose one of: {', '.join(RERANKERS.names())}, or pass the "
            "folder of a Qwen3-Reranker or of a sentence-transformers cross-encoder"
        )
    for directory in settings.model_dirs:
        for name in spec.folder_names:
            candidate = Path(directory) / name
            if (candidate / "config.json").exists():
                return spec, candidate
    from embedhub.models.loading import hub_folder

    folder = (
        hub_folder(spec.hub_id, settings, allow_network=settings.allow_downloads) if spec.hub_id else None
    )
    if folder is None:
        raise ModelLoadError(
            f"weights for {spec.name} are not on this machine (looked in "
            f"EMBEDHUB_MODEL_DIRS={[str(d) for d in settings.model_dirs]} and the Hugging Face cache); "
            f"put the {spec.name} folder in one of EMBEDHUB_MODEL_DIRS or pass its path"
        )
    return spec, folder


def load_reranker(reference: str, settings: Settings) -> Reranker:
    """Resolve and load a reranker, with the encoders' threads and allocator settings."""
    spec, folder = resolve_reranker(reference, settings)
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.heap_activations:
        from embedhub.models.allocator import keep_activations_on_heap

        keep_activations_on_heap()
    if spec.family == "qwen3":
        return Qwen3Reranker(spec, folder, settings)
    if spec.family == "cross-encoder":
        return CrossEncoderReranker(spec, folder, settings)
    raise ConfigurationError(f"unknown reranker family {spec.family!r}")  # unreachable: a Literal
