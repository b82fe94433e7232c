"""Search over a collection: dense (the model's query form and instruction), lexical (BM25 over the
collection's analyzer terms) and hybrid by weighted fusion of normalised scores (the default) or
reciprocal rank fusion (k=60), both in kb/fusion.py; with metadata filters, an optional rerank
stage over the best fused candidates (with a score threshold), an optional limit of chunks per
document, and results that carry their citations."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from embedhub.errors import InvalidInputError
from embedhub.kb.chunking import chunk_kind
from embedhub.kb.collection import Collection
from embedhub.kb.fusion import DENSE_WEIGHT, FUSIONS, Fusion, fuse
from embedhub.kb.snippets import highlight
from embedhub.kb.store import Hit, SearchFilter
from embedhub.models.base import Encoder

Mode = Literal["hybrid", "dense", "lexical"]
MODES = ("hybrid", "dense", "lexical")
#: a hybrid search runs its BM25 query here while the calling thread encodes the query and runs
#: the dense search (both wait in the store's native code, not in Python), so its latency is the
#: longer of the two instead of their sum (docs/performance.md, "Scale")
_LEXICAL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="embedhub-lexical")
#: fused candidates reranked by default: max(RERANK_FACTOR * k, RERANK_MINIMUM)
RERANK_FACTOR = 3
RERANK_MINIMUM = 30
#: the limits of a search, checked by SearchOptions; the HTTP schemas read them from here
MAX_QUERY_CHARS = 4000  # over HTTP and MCP (a library call may send longer)
MAX_K = 1000
MAX_HTTP_K = 200  # results in one HTTP response
MAX_PER_DOCUMENT = 1000
MAX_RERANK_CANDIDATES = 1000


def default_rerank_candidates(k: int) -> int:
    return max(k * RERANK_FACTOR, RERANK_MINIMUM)


class PassageScorer(Protocol):
    """Scores (query, passage) pairs; higher is more relevant (embedhub.models.reranker implements
    it, and so does the server's queue-backed engine.reranking.ScheduledReranker)."""

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
    rerank_score: float | None = None  # the reranker's score (then also `score`), None when not reranked
    kind: str = "text"  # "table": the text is a pipe table, header row first (see `chunk_kind`)

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
            "rerank_score": self.rerank_score,
            "kind": self.kind,
        }


def fuse_hits(dense: list[Hit], lexical: list[Hit], fusion: Fusion, dense_weight: float) -> list[Hit]:
    """The hybrid of the two sides' hits (kb/fusion.py), each fused hit keeping its chunk row."""
    rows = {hit.row.id: hit.row for hits in (dense, lexical) for hit in hits}
    fused = fuse(
        [(hit.row.id, hit.score) for hit in dense],
        [(hit.row.id, hit.score) for hit in lexical],
        fusion=fusion,
        dense_weight=dense_weight,
    )
    return [Hit(rows[entry.identifier], entry.score, entry.retrievers) for entry in fused]


def one_per_document(hits: list[Hit], limit: int) -> list[Hit]:
    """At most `limit` chunks of each document, best first (a document ranks by its best chunk)."""
    kept, seen = [], {}
    for hit in hits:
        count = seen.get(hit.row.doc_id, 0)
        if count < limit:
            kept.append(hit)
            seen[hit.row.doc_id] = count + 1
    return kept


@dataclass(frozen=True)
class SearchOptions:
    """What one search asks for, checked once where it enters (an HTTP body, CLI flags, MCP tool
    arguments, a library call) and passed down whole. `rerank` None means: when the searcher has a
    reranker; `rerank_candidates` fused chunks (default max(3k, 30)) are then scored by it and
    `min_score` drops those it scored lower; `candidates` is how many hits each side fetches
    (default: enough for k and the rerank pool); `exact` compares the query with every stored
    vector instead of using the ANN index (to measure the index's recall)."""

    query: str
    k: int = 10
    mode: Mode = "hybrid"
    where: SearchFilter = field(default_factory=SearchFilter)
    fusion: Fusion = "weighted"
    dense_weight: float = DENSE_WEIGHT
    candidates: int | None = None
    per_document: int | None = None
    rerank: bool | None = None
    rerank_candidates: int | None = None
    min_score: float | None = None
    exact: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown search mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if not self.query.strip():
            raise InvalidInputError("the query is empty")
        if not 1 <= self.k <= MAX_K:
            raise InvalidInputError(f"k={self.k} is outside 1..{MAX_K}")
        if self.fusion not in FUSIONS:
            raise InvalidInputError(f"unknown fusion {self.fusion!r}; choose one of: {', '.join(FUSIONS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise InvalidInputError(f"dense_weight={self.dense_weight} is outside 0..1")
        if self.per_document is not None and self.per_document < 1:
            raise InvalidInputError(f"per_document={self.per_document} must be at least 1")
        if self.rerank_candidates is not None and not 1 <= self.rerank_candidates <= MAX_RERANK_CANDIDATES:
            raise InvalidInputError(
                f"rerank_candidates={self.rerank_candidates} is outside 1..{MAX_RERANK_CANDIDATES}"
            )
        if self.where is None:
            object.__setattr__(self, "where", SearchFilter())

    @property
    def rerank_pool(self) -> int:
        return self.rerank_candidates or default_rerank_candidates(self.k)

    def with_query(self, query: str) -> SearchOptions:
        return replace(self, query=query)

    def request(self) -> dict:
        """The body of the HTTP API's search request (`candidates` is not part of it)."""
        where = self.where
        return {
            "query": self.query,
            "k": self.k,
            "mode": self.mode,
            "fusion": self.fusion,
            "dense_weight": self.dense_weight,
            "per_document": self.per_document,
            "path_glob": where.path_glob,
            "file_types": list(where.file_types),
            "page_min": where.page_min,
            "page_max": where.page_max,
            "rerank": bool(self.rerank),
            "rerank_candidates": self.rerank_candidates,
            "min_score": self.min_score,
            "exact": self.exact,
        }


class Searcher:
    def __init__(
        self, collection: Collection, encoder: Encoder | None, reranker: PassageScorer | None = None
    ) -> None:
        if encoder is not None:
            collection.check_encoder(encoder)
        self.collection = collection
        self.encoder = encoder
        self.reranker = reranker
        self.analyzer = collection.config.analyzer

    def search(self, query: str, **options) -> list[SearchResult]:
        """`find` with the options as keywords (SearchOptions' fields), for scripts and tests."""
        return self.find(SearchOptions(query, **options))

    def find(self, options: SearchOptions) -> list[SearchResult]:
        """The best `options.k` chunks, best first (see SearchOptions); reranked results carry the
        reranker's score as their `score` and `rerank_score`."""
        rerank = self.reranker is not None if options.rerank is None else options.rerank
        if rerank and self.reranker is None:
            raise InvalidInputError("reranking was asked for, but no reranker is loaded; name one")
        if options.min_score is not None and not rerank:
            raise InvalidInputError("min_score applies to reranker scores; ask for reranking too")
        query, mode, where = options.query, options.mode, options.where
        pool_size = options.rerank_pool
        fetch = options.candidates or max(options.k * 4, 50, pool_size if rerank else 0)
        rankings: dict[str, list[Hit]] = {}
        lexical = None
        if mode in ("lexical", "hybrid"):
            terms = " ".join(self.analyzer.terms(query))
            lexical = _LEXICAL.submit(self.collection.store.lexical_search, terms, fetch, where)
        if mode in ("dense", "hybrid"):
            try:
                rankings["dense"] = self._dense(query, fetch, where, options.exact)
            except BaseException:
                if lexical is not None:
                    lexical.cancel()  # not started yet: never run; running: its answer is dropped
                raise
        if lexical is not None:
            rankings["lexical"] = lexical.result()
        rankings = self._visible(rankings, where)
        if mode == "hybrid":
            hits = fuse_hits(rankings["dense"], rankings["lexical"], options.fusion, options.dense_weight)
        else:
            hits = rankings[mode]
            for hit in hits:
                hit.retrievers = [mode]
        reranked = False
        if rerank and hits:
            pool = hits[:pool_size]
            scores = self.reranker.score(query, [hit.row.text for hit in pool])
            for hit, score in zip(pool, scores, strict=True):
                hit.score = float(score)
                hit.retrievers = [*hit.retrievers, f"rerank:{self.reranker.name}"]
            hits = sorted(pool, key=lambda hit: hit.score, reverse=True)
            if options.min_score is not None:
                hits = [hit for hit in hits if hit.score >= options.min_score]
            reranked = True
        if options.per_document is not None:
            hits = one_per_document(hits, options.per_document)
        return [
            self._result(hit, query, rank, reranked) for rank, hit in enumerate(hits[: options.k], start=1)
        ]

    def _dense(self, query: str, fetch: int, where: SearchFilter, exact: bool = False) -> list[Hit]:
        if self.encoder is None:
            raise InvalidInputError("dense and hybrid search need the collection's model; use mode lexical")
        config = self.collection.config
        instruction = config.instruction if self.encoder.spec.supports_instructions else None
        vector = self.encoder.encode(
            [query], kind="query", instruction=instruction, dimensions=config.dimensions
        )
        return self.collection.store.dense_search(vector.vectors[0], fetch, where, exact=exact)

    def _visible(self, rankings: dict[str, list[Hit]], where: SearchFilter) -> dict[str, list[Hit]]:
        """Only committed generations (an interrupted write is never seen), exact filter semantics.
        The manifest is asked about the hits' documents only, once for all rankings."""
        doc_ids = {hit.row.doc_id for hits in rankings.values() for hit in hits}
        committed = self.collection.manifest.committed_generations(doc_ids) if doc_ids else {}

        def visible(hit: Hit) -> bool:
            return committed.get(hit.row.doc_id) == hit.row.generation and where.matches(hit.row)

        return {name: [hit for hit in hits if visible(hit)] for name, hits in rankings.items()}

    def _result(self, hit: Hit, query: str, rank: int, reranked: bool = False) -> SearchResult:
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
            snippet=highlight(row.text, query, analyzer=self.analyzer),
            doc_id=row.doc_id,
            chunk_id=row.id,
            rank=rank,
            rerank_score=hit.score if reranked else None,
            kind=chunk_kind(row.text),
        )
