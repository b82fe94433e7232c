"""Retrieval modes: functions `mode(job) -> {query id: [document ids, best first]}`, by name.

- `dense`: the raw encoder, exact cosine over the whole corpus. Queries are embedded as queries
  (with the model's retrieval instruction, when it has one), documents as documents
  (`title + " " + text`, truncated to the model's limit);
- `lexical`: BM25 (see eval/lexical.py);
- `hybrid`: reciprocal rank fusion (k=60) of the dense and lexical rankings;
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
from embedhub.eval.metrics import reciprocal_rank_fusion, top_k_indices
from embedhub.models.spec import Task

Rankings = dict[str, list[str]]
MODES_HELP = (
    "Comma-separated modes: dense, lexical, hybrid (the raw encoder), "
    "kb-dense, kb-lexical, kb-hybrid (through the knowledge base)."
)


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
    rrf_k: int = field(default=60, metadata={"help": "k of reciprocal rank fusion (hybrid modes)."})


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
        ids = self.dataset.corpus_ids
        out: Rankings = {}
        for start in range(0, len(queries), 256):
            scores = queries[start : start + 256] @ documents.T
            best = top_k_indices(scores, self.options.depth)
            for row, qid in enumerate(self.dataset.query_ids[start : start + 256]):
                out[qid] = [ids[i] for i in best[row]]
        return out


ModeFn = Callable[[RetrievalJob], Rankings]


def _dense(job: RetrievalJob) -> Rankings:
    return job.dense_rankings(job.query_vectors, job.document_vectors)


def _lexical(job: RetrievalJob) -> Rankings:
    dataset = job.dataset
    index = BM25Index(dataset.corpus_texts, k1=job.options.k1, b=job.options.b)
    out: Rankings = {}
    with job.ctx.progress.track(f"{dataset.name} BM25", len(dataset.query_ids)) as advance:
        for qid, text in zip(dataset.query_ids, dataset.query_texts, strict=True):
            out[qid] = [dataset.corpus_ids[i] for i, _ in index.search(text, job.options.depth)]
            advance(1)
    return out


def _hybrid(job: RetrievalJob) -> Rankings:
    dense, lexical = job.rankings("dense"), job.rankings("lexical")
    return {
        qid: reciprocal_rank_fusion(
            [dense.get(qid, []), lexical.get(qid, [])], k=job.options.rrf_k, depth=job.options.depth
        )
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
