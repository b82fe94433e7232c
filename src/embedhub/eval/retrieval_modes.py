"""Retrieval modes: functions `mode(job) -> {query id: [document ids, best first]}`, by name.

- `dense`: the raw encoder, exact cosine over the whole corpus. Queries are embedded as queries
  (with the model's retrieval instruction, when it has one), documents as documents
  (`title + " " + text`, truncated to the model's limit);
- `lexical`: BM25 (see eval/lexical.py);
- `hybrid`: the knowledge base's own fusion (`embedhub.kb.fusion.fuse`) of the dense and lexical
  rankings and their scores: by default the weighted sum of z-normalised scores (dense weight
  0.5), or reciprocal rank fusion with `fusion="rrf"`;
- `kb-lexical`, `kb-dense`, `kb-hybrid`: the same through the knowledge base (eval/kb_modes.py),
  registered explicitly at the end of this module.
Another mode is added with `register_mode(name, fn)`: `fn` receives the `RetrievalJob` (dataset,
context, options) and returns rankings like the above. The retrieval, code and MRL tasks use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedhub.errors import EmbedhubError
from embedhub.eval import kb_modes
from embedhub.eval.core import EvalContext
from embedhub.eval.datasets import RetrievalSet
from embedhub.eval.lexical import BM25_B, BM25_K1, BM25Index
from embedhub.eval.metrics import top_k_indices
from embedhub.kb.fusion import DENSE_WEIGHT, FUSIONS, RRF_K, fuse
from embedhub.models.spec import Task

Rankings = dict[str, list[str]]
#: per query, (document id, score) pairs, best first: what the hybrid mode fuses
ScoredRankings = dict[str, list[tuple[str, float]]]
MODES_HELP = (
    "Comma-separated modes: dense, lexical, hybrid (the raw encoder), "
    "kb-dense, kb-lexical, kb-hybrid (through the knowledge base)."
)
FUSION_HELP = (
    "How the hybrid modes fuse dense and lexical: weighted (z-normalised scores, the knowledge "
    "base's default) or rrf (reciprocal rank fusion)."
)
DENSE_WEIGHT_HELP = "The dense side's weight in the weighted fusion (the lexical side gets the rest)."


@dataclass
class RetrievalOptions:
    """Options of the retrieval task (each field is a flag of `embedhub eval retrieval`)."""

    modes: tuple[str, ...] = field(
        default=("dense", "lexical", "hybrid"),
        metadata={"help": MODES_HELP},
    )
    depth: int = field(
        default=1000, metadata={"help": "Documents ranked per query (MAP is computed over them)."}
    )
    k1: float = field(default=BM25_K1, metadata={"help": "BM25 k1 (the knowledge base's index: 1.2)."})
    b: float = field(default=BM25_B, metadata={"help": "BM25 b (the knowledge base's index: 0.75)."})
    fusion: str = field(default="weighted", metadata={"help": FUSION_HELP})
    dense_weight: float = field(default=DENSE_WEIGHT, metadata={"help": DENSE_WEIGHT_HELP})
    rrf_k: int = field(
        default=RRF_K,
        metadata={"help": "k of reciprocal rank fusion (--fusion rrf; kb-hybrid always uses 60)."},
    )


def check_fusion(fusion: str, dense_weight: float) -> None:
    """Fail before any encoding on a fusion the hybrid modes do not know."""
    if fusion not in FUSIONS:
        raise EmbedhubError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    if not 0.0 <= dense_weight <= 1.0:
        raise EmbedhubError(f"dense_weight={dense_weight} is outside 0..1")


class RetrievalJob:
    """One dataset being ranked by one model: computes and remembers each mode's rankings."""

    def __init__(
        self,
        ctx: EvalContext,
        dataset: RetrievalSet,
        options: RetrievalOptions,
        *,
        task: Task = Task.RETRIEVAL,
    ) -> None:
        self.ctx = ctx
        self.dataset = dataset
        self.options = options
        self.task = task
        self._rankings: dict[str, Rankings] = {}
        self._scored: dict[str, ScoredRankings] = {}
        #: things a mode built for this job (e.g. a temporary collection), closed with the job
        self.resources: dict[str, Any] = {}

    def close(self) -> None:
        for resource in self.resources.values():
            resource.close()
        self.resources.clear()

    def rankings(self, mode: str) -> Rankings:
        if mode not in self._rankings:
            self._rankings[mode] = get_mode(mode)(self)
        return self._rankings[mode]

    def scored_rankings(self, mode: str) -> ScoredRankings:
        """The raw `dense` or `lexical` ranking of each query with the scores it was ranked by."""
        if mode not in self._scored:
            scorers = {"dense": _dense_scored, "lexical": _lexical_scored}
            if mode not in scorers:
                raise EmbedhubError(f"no scored ranking for mode {mode!r}; choose from: dense, lexical")
            self._scored[mode] = scorers[mode](self)
        return self._scored[mode]

    @functools.cached_property
    def query_vectors(self) -> np.ndarray:
        return self.ctx.embed(
            self.dataset.query_texts,
            kind="query",
            task=self.task,
            description=f"{self.dataset.name} queries",
        )

    @functools.cached_property
    def document_vectors(self) -> np.ndarray:
        return self.ctx.embed(
            self.dataset.corpus_texts,
            kind="document",
            truncate=True,
            description=f"{self.dataset.name} corpus",
        )

    def dense_rankings(self, queries: np.ndarray, documents: np.ndarray) -> Rankings:
        return _ids(self.dense_scored_rankings(queries, documents))

    def dense_scored_rankings(self, queries: np.ndarray, documents: np.ndarray) -> ScoredRankings:
        ids = self.dataset.corpus_ids
        out: ScoredRankings = {}
        for start in range(0, len(queries), 256):
            scores = queries[start : start + 256] @ documents.T
            best = top_k_indices(scores, self.options.depth)
            for row, qid in enumerate(self.dataset.query_ids[start : start + 256]):
                out[qid] = [(ids[i], float(scores[row, i])) for i in best[row]]
        return out


ModeFn = Callable[[RetrievalJob], Rankings]


def _ids(scored: ScoredRankings) -> Rankings:
    return {qid: [doc for doc, _ in ranking] for qid, ranking in scored.items()}


def _dense_scored(job: RetrievalJob) -> ScoredRankings:
    return job.dense_scored_rankings(job.query_vectors, job.document_vectors)


def _lexical_scored(job: RetrievalJob) -> ScoredRankings:
    dataset = job.dataset
    index = BM25Index(dataset.corpus_texts, k1=job.options.k1, b=job.options.b)
    out: ScoredRankings = {}
    with job.ctx.progress.track(f"{dataset.name} BM25", len(dataset.query_ids)) as advance:
        for qid, text in zip(dataset.query_ids, dataset.query_texts, strict=True):
            out[qid] = [(dataset.corpus_ids[i], score) for i, score in index.search(text, job.options.depth)]
            advance(1)
    return out


def _dense(job: RetrievalJob) -> Rankings:
    return _ids(job.scored_rankings("dense"))


def _lexical(job: RetrievalJob) -> Rankings:
    return _ids(job.scored_rankings("lexical"))


def _hybrid(job: RetrievalJob) -> Rankings:
    """Both rankings with their scores through the product's fusion, cut to `depth`."""
    dense, lexical = job.scored_rankings("dense"), job.scored_rankings("lexical")
    options = job.options
    return {
        qid: [
            entry.identifier
            for entry in fuse(
                dense.get(qid, []),
                lexical.get(qid, []),
                fusion=options.fusion,
                dense_weight=options.dense_weight,
                rrf_k=options.rrf_k,
            )[: options.depth]
        ]
        for qid in job.dataset.query_ids
    }


MODES: dict[str, ModeFn] = {"dense": _dense, "lexical": _lexical, "hybrid": _hybrid}


def register_mode(name: str, fn: ModeFn) -> None:
    """Add a retrieval mode (e.g. the knowledge base's search) usable as `--modes NAME`."""
    MODES[name] = fn


def get_mode(name: str) -> ModeFn:
    try:
        return MODES[name]
    except KeyError:
        raise EmbedhubError(f"unknown retrieval mode {name!r}; choose from: {', '.join(MODES)}") from None


for _name, _fn in kb_modes.MODES.items():
    register_mode(_name, _fn)
