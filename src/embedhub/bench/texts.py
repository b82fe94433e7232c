"""Benchmark inputs: the same texts for every peer, cut to exactly N tokens of the model's own
tokenizer as the model sees them (document template and special tokens included)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from embedhub.models.spec import InputKind, ModelSpec

#: Words for synthetic English when the SciFact corpus is not on this machine.
SYNTHETIC_WORDS = [
    "the",
    "cell",
    "protein",
    "gene",
    "expression",
    "patients",
    "study",
    "results",
    "model",
    "increased",
    "reduced",
    "analysis",
    "response",
    "treatment",
    "risk",
    "effect",
    "mice",
    "levels",
    "clinical",
    "trial",
    "data",
    "significant",
    "associated",
    "with",
    "in",
    "of",
    "and",
    "to",
    "was",
    "were",
    "for",
    "by",
    "we",
    "found",
    "that",
    "these",
    "observed",
    "between",
    "higher",
    "lower",
    "group",
]


@dataclass(frozen=True)
class TextSet:
    """Texts of one model at one length. embedhub is given `texts` and applies the model's
    document template itself; sentence-transformers and Infinity are given `formatted` (the same
    texts in that template), so every peer runs the same tokens. `tokens` is what each costs the
    model, special tokens included."""

    requested_length: int
    length: int
    texts: tuple[str, ...]
    formatted: tuple[str, ...]
    tokens: tuple[int, ...]

    @property
    def capped(self) -> bool:
        """True when the model's maximum is below the requested length."""
        return self.length < self.requested_length


def read_corpus(path: Path) -> list[str] | None:
    """`title + " " + text` of every document of a BEIR corpus.jsonl, or None when it is absent."""
    if not path.is_file():
        return None
    documents = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            text = f"{record.get('title', '')} {record.get('text', '')}".strip()
            if text:
                documents.append(text)
    return documents or None


def synthetic_documents(count: int, seed: int = 0) -> list[str]:
    """Seeded English-looking sentences, used when the corpus is absent."""
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        sentences = [
            " ".join(rng.choice(SYNTHETIC_WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
            for _ in range(rng.randint(5, 12))
        ]
        documents.append(" ".join(sentences))
    return documents


def framing_tokens(tokenizer: Tokenizer, spec: ModelSpec) -> int:
    """How many special tokens frame every input (Qwen3: one <|endoftext|>; BERT: [CLS] + [SEP])."""
    if spec.suffix_token_ids:
        return len(spec.suffix_token_ids)
    bare = tokenizer.encode("hello", add_special_tokens=False).ids
    return len(tokenizer.encode("hello", add_special_tokens=True).ids) - len(bare)


def build_text_sets(
    documents: list[str],
    tokenizer: Tokenizer,
    spec: ModelSpec,
    lengths: list[int],
    count: int,
) -> list[TextSet]:
    """`count` texts per length (capped at the model's maximum): text i starts at document i of
    the concatenated documents, so texts differ while every peer gets the same ones."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    framing = framing_tokens(tokenizer, spec)

    def cost(raw: str) -> int:
        formatted = spec.format_text(raw, InputKind.DOCUMENT, None)
        return len(tokenizer.encode(formatted, add_special_tokens=False).ids) + framing

    sets = []
    for requested in lengths:
        length = min(requested, spec.max_tokens)
        texts, tokens = [], []
        for index in range(count):
            raw = _concatenated(documents, index, length)
            texts.append(cut_to_tokens(raw, tokenizer, cost, length))
            tokens.append(cost(texts[-1]))
        formatted = tuple(spec.format_text(text, InputKind.DOCUMENT, None) for text in texts)
        sets.append(TextSet(requested, length, tuple(texts), formatted, tuple(tokens)))
    return sets


def _concatenated(documents: list[str], start: int, length: int) -> str:
    """Documents from `start` on, joined until comfortably longer than `length` tokens."""
    parts, characters, index = [], 0, start
    while characters < 12 * length + 200:  # a token is 3-5 characters of English
        part = documents[index % len(documents)]
        parts.append(part)
        characters += len(part) + 2
        index += 1
    return "\n\n".join(parts)


def cut_to_tokens(raw: str, tokenizer: Tokenizer, cost: Callable[[str], int], length: int) -> str:
    """The longest prefix of `raw` whose cost is exactly `length` tokens (or the closest below).

    Cutting at a token's end offset and tokenising again is usually exact; where a cut word
    re-tokenises into more pieces, the cut moves back by the difference and tries again."""
    encoding = tokenizer.encode(raw, add_special_tokens=False)
    offsets = encoding.offsets
    keep = min(len(offsets), length)
    best = ""
    for _ in range(40):
        prefix = raw[: offsets[keep - 1][1]] if keep > 0 else ""
        spent = cost(prefix)
        if spent == length:
            return prefix
        if spent < length and len(prefix) > len(best):
            best = prefix
        keep = max(1, min(len(offsets), keep + (length - spent)))
        if spent < length and keep >= len(offsets):
            break
    return best
