"""Retrieval modes that go through the knowledge base: `kb-lexical`, `kb-dense`, `kb-hybrid`.

Why: the raw-encoder modes measure the model; these measure what a user of `embedhub kb` gets,
with chunking, the heading path embedded with each chunk, LanceDB, the lexical analyzer and the
fusion. Each corpus document becomes one Markdown file (`# title` when the corpus has titles,
then the text) ingested like any user folder into a throw-away collection; chunk hits are
collapsed to their documents by the search itself (`per_document=1`: a document ranks by its best
chunk, as a user sees it with that option). The collection is built once per
dataset and model and shared by the three modes.

`benchmarks/naive_baseline.py --reranker NAME` adds a reranked hybrid (`rankings(..., reranker=)`):
the best `rerank_candidates` fused chunks scored by the reranker, then collapsed to documents; it
is not a registered mode, since it needs reranker weights that `embedhub eval` does not load.

A search ranks at most `CHUNKS_PER_QUERY` chunks, so Recall@100 and MAP see only the documents
those chunks belong to: comparable between kb modes, a lower bound next to the raw modes' 1000.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.eval.core import EvalContext
from embedhub.eval.datasets import RetrievalSet

CHUNKS_PER_QUERY = 300
#: per query id, document ids best first
Rankings = dict[str, list[str]]


class RetrievalJob(Protocol):
    """What these modes need of a retrieval job (eval/retrieval_modes.RetrievalJob, which
    registers them, so this module names the contract instead of importing it back)."""

    ctx: EvalContext
    dataset: RetrievalSet
    options: Any  # RetrievalOptions: fusion, dense_weight
    resources: dict[str, Any]


class KnowledgeBaseRun:
    """A temporary collection holding one dataset's corpus, and the document of every file."""

    def __init__(self, job: RetrievalJob) -> None:
        from embedhub.kb.collection import KnowledgeBase
        from embedhub.kb.ingest import Ingestor
        from embedhub.kb.search import Searcher

        dataset, encoder = job.dataset, job.ctx.encoder
        self.work = Path(tempfile.mkdtemp(prefix="embedhub-eval-kb-"))
        files = self.work / "corpus"
        files.mkdir()
        self.document_of_path: dict[str, str] = {}
        titles = dataset.corpus_titles or [""] * len(dataset.corpus_ids)
        for index, (doc_id, text, title) in enumerate(
            zip(dataset.corpus_ids, dataset.corpus_texts, titles, strict=True)
        ):
            body = text[len(title) :].strip() if title and text.startswith(title) else text
            path = files / f"{index:07d}.md"
            path.write_text((f"# {title}\n\n" if title else "") + body + "\n", encoding="utf-8")
            self.document_of_path[str(path.resolve())] = doc_id
        knowledge_base = KnowledgeBase(Settings(home=self.work / "home"), cache=job.ctx.cache)
        collection = knowledge_base.create(
            "eval", encoder, model_reference=encoder.spec.name, dimensions=job.ctx.dimensions
        )
        progress = job.ctx.progress
        with progress.track(f"{dataset.name} knowledge-base ingest", 1) as advance:
            report = Ingestor(collection, encoder).ingest([files])
            advance(1)
        if report.failures:
            first = report.failures[0]
            raise EmbedhubError(
                f"{len(report.failures)} corpus files failed to ingest, e.g. {first.path}: {first.error}"
            )
        self.chunks = collection.store.count()
        self.collection, self.encoder = collection, encoder
        self.searcher = Searcher(collection, encoder)

    def rankings(
        self, job: RetrievalJob, mode: str, reranker=None, rerank_candidates: int | None = None
    ) -> Rankings:
        from embedhub.kb.search import Searcher

        out: Rankings = {}
        dataset = job.dataset
        searcher = self.searcher if reranker is None else Searcher(self.collection, self.encoder, reranker)
        label = f"kb-{mode}" + ("" if reranker is None else f"-rerank ({reranker.name})")
        with job.ctx.progress.track(f"{dataset.name} {label}", len(dataset.query_ids)) as advance:
            for query_id, text in zip(dataset.query_ids, dataset.query_texts, strict=True):
                ranked: list[str] = []
                if text.strip():
                    hits = searcher.search(
                        text,
                        k=CHUNKS_PER_QUERY,
                        mode=mode,
                        candidates=CHUNKS_PER_QUERY,
                        per_document=1,
                        fusion=job.options.fusion,
                        dense_weight=job.options.dense_weight,
                        rerank=reranker is not None,
                        rerank_candidates=rerank_candidates,
                    )
                    ranked = [self.document_of_path[hit.path] for hit in hits]
                out[query_id] = ranked
                advance(1)
        return out

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def knowledge_base_run(job: RetrievalJob) -> KnowledgeBaseRun:
    """One collection per job (dataset x model), built on first use, removed when the job closes."""
    if "knowledge-base" not in job.resources:
        job.resources["knowledge-base"] = KnowledgeBaseRun(job)
    return job.resources["knowledge-base"]


def _mode(name: str):
    def rank(job: RetrievalJob) -> Rankings:
        return knowledge_base_run(job).rankings(job, name)

    rank.__name__ = f"kb_{name}"
    return rank


MODES = {f"kb-{name}": _mode(name) for name in ("lexical", "dense", "hybrid")}
