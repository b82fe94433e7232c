"""BM25 for the evaluation's lexical and hybrid baselines (bm25s), over the knowledge base's own
analyzer (`embedhub.kb.lexical`), so the baseline counts the same terms the product indexes.

Parameters default to k1=1.2, b=0.75: the BM25 the knowledge base's full-text index computes
(LanceDB's inverted index has these two constants built in), so `lexical` here and `kb-lexical`
differ only by chunking, not by scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from embedhub.eval.metrics import top_k_indices
from embedhub.kb.lexical import DEFAULT_ANALYZER

BM25_K1 = 1.2
BM25_B = 0.75


class BM25Index:
    """An in-memory BM25 index over a list of documents."""

    def __init__(
        self,
        documents: Sequence[str],
        analyzer: Callable[[str], list[str]] = DEFAULT_ANALYZER.terms,
        k1: float = BM25_K1,
        b: float = BM25_B,
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
