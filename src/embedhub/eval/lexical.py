"""BM25 for the lexical and hybrid retrieval baselines (bm25s, Lucene's BM25 variant).

Text is analysed with a lowercase word regex; runs of Chinese characters are segmented into words
by jieba. Code is split into identifiers and their parts (`parse_url` -> parse_url, parse, url;
`readFile` -> readfile, read, file). Parameters default to k1=0.9, b=0.4 (the Anserini / Pyserini
defaults that BEIR-style BM25 baselines use).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

from embedhub.eval.metrics import top_k_indices

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_jieba = None


def _segment(run: str) -> list[str]:
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return [word for word in _jieba.lcut(run) if word.strip()]


def analyze_text(text: str) -> list[str]:
    """Lowercased words; Chinese runs segmented by jieba."""
    terms: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).lower()):
        token = match.group()
        if _CJK_RUN.match(token):
            terms.extend(_segment(token))
        else:
            terms.append(token)
    return terms


def analyze_code(text: str) -> list[str]:
    """Identifiers, lowercased, plus their snake_case and camelCase parts."""
    terms: list[str] = []
    for match in _IDENTIFIER.finditer(text):
        identifier = match.group()
        terms.append(identifier.lower())
        parts = [p for chunk in identifier.split("_") for p in _CAMEL.findall(chunk)]
        if len(parts) > 1:
            terms.extend(part.lower() for part in parts)
    return terms


ANALYZERS: dict[str, Callable[[str], list[str]]] = {"text": analyze_text, "code": analyze_code}


class BM25Index:
    """An in-memory BM25 index over a list of documents."""

    def __init__(
        self,
        documents: Sequence[str],
        analyzer: Callable[[str], list[str]] = analyze_text,
        k1: float = 0.9,
        b: float = 0.4,
    ) -> None:
        import bm25s

        self.analyzer = analyzer
        self.size = len(documents)
        self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        tokens = [analyzer(text) or [""] for text in documents]
        self.retriever.index(tokens, show_progress=False)
        self.vocabulary = set(self.retriever.vocab_dict)

    def scores(self, query: str) -> np.ndarray:
        terms = [term for term in self.analyzer(query) if term in self.vocabulary and term]
        if not terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(terms), dtype=np.float32)

    def search(self, query: str, depth: int) -> list[tuple[int, float]]:
        """Documents with a positive score, best first (at most `depth`)."""
        scores = self.scores(query)
        best = top_k_indices(scores[None, :], depth)[0]
        return [(int(i), float(scores[i])) for i in best if scores[i] > 0]
