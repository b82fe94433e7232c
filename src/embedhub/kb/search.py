"""Search over a collection: dense (the model's query instruction), lexical (BM25 over jieba /
word terms) and hybrid by reciprocal rank fusion (k=60) or weighted score fusion, with metadata
filters, an optional reranker, and results that carry their citations."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from embedhub.errors import InvalidInputError
from embedhub.kb.collection import Collection
from embedhub.kb.lexical import analyze
from embedhub.kb.store import Hit, SearchFilter
from embedhub.models.base import Encoder

Mode = Literal["hybrid", "dense", "lexical"]
MODES = ("hybrid", "dense", "lexical")
RRF_K = 60


class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


@dataclass
class SearchResult:
    text: str
    score: float
    retrievers: list[str]
    path: str
    file_type: str
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    char_start: int
    char_end: int
    snippet: str
    doc_id: str
    chunk_id: str
    rank: int = 0  # 1 for the best result: what a user compares, unlike the fused score

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "score": self.score,
            "retrievers": self.retrievers,
            "path": self.path,
            "file_type": self.file_type,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "heading_path": self.heading_path,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "snippet": self.snippet,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "rank": self.rank,
        }


def reciprocal_rank_fusion(rankings: dict[str, list[Hit]], k: int = RRF_K) -> list[Hit]:
    """Σ 1/(k + rank) over the rankings a chunk appears in (rank from 1)."""
    fused: dict[str, Hit] = {}
    for retriever, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit.row.id, Hit(hit.row, 0.0, []))
            entry.score += 1.0 / (k + rank)
            entry.retrievers.append(retriever)
    return sorted(fused.values(), key=lambda hit: hit.score, reverse=True)


def weighted_fusion(rankings: dict[str, list[Hit]], weights: dict[str, float]) -> list[Hit]:
    """Min-max normalised scores, weighted and summed."""
    fused: dict[str, Hit] = {}
    for retriever, hits in rankings.items():
        if not hits:
            continue
        scores = [hit.score for hit in hits]
        low, high = min(scores), max(scores)
        for hit in hits:
            normalised = (hit.score - low) / (high - low) if high > low else 1.0
            entry = fused.setdefault(hit.row.id, Hit(hit.row, 0.0, []))
            entry.score += weights.get(retriever, 1.0) * normalised
            entry.retrievers.append(retriever)
    return sorted(fused.values(), key=lambda hit: hit.score, reverse=True)


_HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
_HAN = re.compile(f"[{_HAN_RANGES}]")
_WORD_CHAR = f"[^\\W_{_HAN_RANGES}]"  # a letter or digit of a spaced script (Han is unspaced)


def _term_pattern(query: str) -> re.Pattern[str] | None:
    """Whole query terms only: Latin-script (and other spaced-script) terms at word boundaries,
    Chinese as jieba words of two or more characters (a lone character matches inside every
    other word), longest first so a compound wins over its parts."""
    terms = {term for term in analyze(query) if len(term) > 1}
    if not terms:
        return None
    alternatives = []
    for term in sorted(terms, key=len, reverse=True):
        if _HAN.search(term):
            alternatives.append(re.escape(term))
        else:  # a letter or digit of a spaced script on either side means we are inside a word
            alternatives.append(f"(?<!{_WORD_CHAR}){re.escape(term)}(?!{_WORD_CHAR})")
    return re.compile("|".join(alternatives), re.IGNORECASE)


def highlight(text: str, query: str, width: int = 280) -> str:
    """An HTML-safe snippet around the densest run of query terms, terms wrapped in <mark>."""
    pattern = _term_pattern(query)
    if pattern is None:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    matches = list(pattern.finditer(text))
    if not matches:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    best_start, best_count = 0, -1
    for match in matches:
        start = max(0, match.start() - width // 4)
        count = sum(1 for m in matches if start <= m.start() < start + width)
        if count > best_count:
            best_start, best_count = start, count
    window = text[best_start : best_start + width]
    parts, cursor = [], 0
    for match in pattern.finditer(window):
        parts.append(html.escape(window[cursor : match.start()]))
        parts.append("<mark>" + html.escape(match.group()) + "</mark>")
        cursor = match.end()
    parts.append(html.escape(window[cursor:]))
    prefix = "…" if best_start > 0 else ""
    suffix = "…" if best_start + width < len(text) else ""
    return prefix + "".join(parts) + suffix


class Searcher:
    def __init__(
        self, collection: Collection, encoder: Encoder | None, reranker: Reranker | None = None
    ) -> None:
        if encoder is not None:
            collection.check_encoder(encoder)
        self.collection = collection
        self.encoder = encoder
        self.reranker = reranker

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: Mode = "hybrid",
        where: SearchFilter | None = None,
        fusion: Literal["rrf", "weighted"] = "rrf",
        dense_weight: float = 0.5,
        candidates: int | None = None,
    ) -> list[SearchResult]:
        if mode not in MODES:
            raise InvalidInputError(f"unknown search mode {mode!r}; choose one of: {', '.join(MODES)}")
        if not query.strip():
            raise InvalidInputError("the query is empty")
        if not 1 <= k <= 1000:
            raise InvalidInputError(f"k={k} is outside 1..1000")
        where = where or SearchFilter()
        fetch = candidates or max(k * 4, 50)
        rankings: dict[str, list[Hit]] = {}
        if mode in ("dense", "hybrid"):
            rankings["dense"] = self._visible(self._dense(query, fetch, where), where)
        if mode in ("lexical", "hybrid"):
            terms = " ".join(analyze(query))
            rankings["lexical"] = self._visible(
                self.collection.store.lexical_search(terms, fetch, where), where
            )
        if mode == "hybrid":
            if fusion == "weighted":
                hits = weighted_fusion(rankings, {"dense": dense_weight, "lexical": 1.0 - dense_weight})
            else:
                hits = reciprocal_rank_fusion(rankings)
        else:
            hits = rankings[mode]
            for hit in hits:
                hit.retrievers = [mode]
        if self.reranker is not None and hits:
            pool = hits[: max(k * 3, 30)]
            scores = self.reranker.score(query, [hit.row.text for hit in pool])
            for hit, score in zip(pool, scores, strict=True):
                hit.score = float(score)
                hit.retrievers = [*hit.retrievers, f"rerank:{self.reranker.name}"]
            hits = sorted(pool, key=lambda hit: hit.score, reverse=True)
        return [self._result(hit, query, rank) for rank, hit in enumerate(hits[:k], start=1)]

    def _dense(self, query: str, fetch: int, where: SearchFilter) -> list[Hit]:
        if self.encoder is None:
            raise InvalidInputError("dense and hybrid search need the collection's model; use mode lexical")
        config = self.collection.config
        instruction = config.instruction if self.encoder.spec.supports_instructions else None
        vector = self.encoder.encode(
            [query], kind="query", instruction=instruction, dimensions=config.dimensions
        )
        return self.collection.store.dense_search(vector.vectors[0], fetch, where)

    def _visible(self, hits: list[Hit], where: SearchFilter) -> list[Hit]:
        """Only committed generations (an interrupted write is never seen), exact filter semantics."""
        committed = self.collection.manifest.committed_generations()
        return [h for h in hits if committed.get(h.row.doc_id) == h.row.generation and where.matches(h.row)]

    def _result(self, hit: Hit, query: str, rank: int) -> SearchResult:
        row = hit.row
        return SearchResult(
            text=row.text,
            score=hit.score,
            retrievers=hit.retrievers,
            path=row.path,
            file_type=row.file_type,
            page_start=row.page_start,
            page_end=row.page_end,
            heading_path=list(row.heading_path),
            char_start=row.char_start,
            char_end=row.char_end,
            snippet=highlight(row.text, query),
            doc_id=row.doc_id,
            chunk_id=row.id,
            rank=rank,
        )
