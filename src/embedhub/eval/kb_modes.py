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

Queries are embedded once per dataset, in batches, through the run's embedding cache (`kb-dense`
and `kb-hybrid` share them), instead of one forward pass per query and mode.

With `--keep` (`EvalContext.keep_dir`) the collection is built in
`OUT/kept/collections/DATASET-DIGEST/` (the digest covers the model, its backend, the dimensions
and the corpus) and left there; the next run with the same model and corpus opens it instead of
ingesting again. Without it, the collection is a temporary folder removed when the job closes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from embedhub.config import Settings
from embedhub.engine.cache import EmbeddingCache, embed_through_cache
from embedhub.errors import EmbedhubError
from embedhub.eval.core import EvalContext
from embedhub.eval.datasets import RetrievalSet
from embedhub.models.base import Embeddings, Encoder, finish

CHUNKS_PER_QUERY = 300
#: written into a kept collection's folder once its ingest finished (a half-built one is rebuilt)
COMPLETE_MARKER = "complete.json"
#: per query id, document ids best first
Rankings = dict[str, list[str]]


class RetrievalJob(Protocol):
    """What these modes need of a retrieval job (eval/retrieval_modes.RetrievalJob, which
    registers them, so this module names the contract instead of importing it back)."""

    ctx: EvalContext
    dataset: RetrievalSet
    options: Any  # RetrievalOptions: fusion, dense_weight
    resources: dict[str, Any]


class CachedQueries:
    """The encoder as the knowledge base's searcher sees it, with `encode` answered from the
    run's embedding cache: each query is computed once (in a batch, `embed_queries`) for all kb
    modes, and a kept cache file makes the next run compute none."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self._encoder = encoder
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: Any = "document",
        instruction: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        truncate: bool = False,
    ) -> Embeddings:
        encoder = self._encoder
        size = encoder.spec.check_dimensions(dimensions)
        inputs = encoder.tokenize(texts, kind=kind, instruction=instruction, truncate=truncate)
        raw, _ = embed_through_cache(encoder, inputs, self._cache)
        return Embeddings(finish(raw, size, normalize), tuple(len(ids) for ids in inputs))


def corpus_digest(job: RetrievalJob) -> str:
    """What a kept collection depends on: the model, its backend and size, and the corpus."""
    encoder, dataset = job.ctx.encoder, job.dataset
    digest = hashlib.sha256()
    header = [encoder.spec.name, str(getattr(encoder, "folder", "")), encoder.backend, job.ctx.output_dims]
    digest.update(json.dumps(header).encode())
    titles = dataset.corpus_titles or [""] * len(dataset.corpus_ids)
    for doc_id, text, title in zip(dataset.corpus_ids, dataset.corpus_texts, titles, strict=True):
        digest.update(json.dumps([doc_id, title, text], ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


class KnowledgeBaseRun:
    """A collection holding one dataset's corpus (temporary, or kept with `--keep`), and the
    document of every file."""

    def __init__(self, job: RetrievalJob) -> None:
        from embedhub.kb.collection import KnowledgeBase
        from embedhub.kb.search import Searcher

        dataset, encoder, ctx = job.dataset, job.ctx.encoder, job.ctx
        self.kept = ctx.keep_dir is not None
        if ctx.keep_dir is not None:
            slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset.name)
            self.work = ctx.keep_dir / "collections" / f"{slug}-{corpus_digest(job)}"
        else:
            self.work = Path(tempfile.mkdtemp(prefix="embedhub-eval-kb-"))
        files = self.work / "corpus"
        knowledge_base = KnowledgeBase(Settings(home=self.work / "home"), cache=ctx.cache)
        if self.kept and (self.work / COMPLETE_MARKER).exists():
            ctx.progress.message(f"{dataset.name}: the collection kept by an earlier run, in {self.work}")
            collection = knowledge_base.get("eval")
            self.document_of_path = self._write_corpus(dataset, files, write=False)
        else:
            if self.kept and self.work.exists():
                shutil.rmtree(self.work)  # an ingest that did not finish
                knowledge_base = KnowledgeBase(Settings(home=self.work / "home"), cache=ctx.cache)
            self.document_of_path = self._write_corpus(dataset, files, write=True)
            collection = self._ingest(knowledge_base, job, files)
        self.chunks = collection.store.count()
        self.collection, self.encoder = collection, CachedQueries(encoder, ctx.cache)
        self.searcher = Searcher(collection, self.encoder)
        self._queries_embedded = False

    @staticmethod
    def _write_corpus(dataset: RetrievalSet, files: Path, *, write: bool) -> dict[str, str]:
        """One Markdown file per document (`# title`, then the text); path -> document id."""
        files.mkdir(parents=True, exist_ok=True)
        document_of_path: dict[str, str] = {}
        titles = dataset.corpus_titles or [""] * len(dataset.corpus_ids)
        for index, (doc_id, text, title) in enumerate(
            zip(dataset.corpus_ids, dataset.corpus_texts, titles, strict=True)
        ):
            path = files / f"{index:07d}.md"
            if write:
                body = text[len(title) :].strip() if title and text.startswith(title) else text
                path.write_text((f"# {title}\n\n" if title else "") + body + "\n", encoding="utf-8")
            document_of_path[str(path.resolve())] = doc_id
        return document_of_path

    def _ingest(self, knowledge_base, job: RetrievalJob, files: Path):
        from embedhub.kb.ingest import Ingestor, Progress

        class FilesIngested(Progress):
            """The ingest's progress in documents (one file per corpus document)."""

            def file_done(self, outcome) -> None:
                advance(1)

        dataset, encoder = job.dataset, job.ctx.encoder
        collection = knowledge_base.create(
            "eval", encoder, model_reference=encoder.spec.name, dimensions=job.ctx.dimensions
        )
        documents = len(dataset.corpus_ids)
        with job.ctx.progress.track(
            f"{dataset.name} knowledge-base ingest (documents)", documents
        ) as advance:
            # Ctrl-C stops at once: the collection is thrown away (or, kept, rebuilt without its
            # complete marker), so the forward pass in flight is not waited for
            ingestor = Ingestor(collection, encoder, FilesIngested(), abandon_on_interrupt=True)
            report = ingestor.ingest([files])
        if report.failures:
            first = report.failures[0]
            raise EmbedhubError(
                f"{len(report.failures)} corpus files failed to ingest, e.g. {first.path}: {first.error}"
            )
        if self.kept:
            marker = {"dataset": dataset.name, "documents": documents, "model": encoder.spec.name}
            (self.work / COMPLETE_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        return collection

    def embed_queries(self, job: RetrievalJob) -> None:
        """Every query's vector into the cache, in batches, as the searcher will ask for it."""
        if self._queries_embedded:
            return
        config = self.collection.config
        instruction = config.instruction if self.encoder.spec.supports_instructions else None
        texts = [text for text in job.dataset.query_texts if text.strip()]
        batch = job.ctx.encode_batch
        with job.ctx.progress.track(f"{job.dataset.name} queries", len(texts)) as advance:
            for start in range(0, len(texts), batch):
                part = texts[start : start + batch]
                self.encoder.encode(part, kind="query", instruction=instruction, dimensions=config.dimensions)
                advance(len(part))
        self._queries_embedded = True

    def rankings(
        self, job: RetrievalJob, mode: str, reranker=None, rerank_candidates: int | None = None
    ) -> Rankings:
        from embedhub.kb.search import Searcher

        out: Rankings = {}
        dataset = job.dataset
        if mode in ("dense", "hybrid"):
            self.embed_queries(job)
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
        self.collection.close()
        if not self.kept:
            shutil.rmtree(self.work, ignore_errors=True)


def knowledge_base_run(job: RetrievalJob) -> KnowledgeBaseRun:
    """One collection per job (dataset x model), built on first use, removed when the job closes
    (unless kept)."""
    if "knowledge-base" not in job.resources:
        job.resources["knowledge-base"] = KnowledgeBaseRun(job)
    return job.resources["knowledge-base"]


def _mode(name: str):
    def rank(job: RetrievalJob) -> Rankings:
        return knowledge_base_run(job).rankings(job, name)

    rank.__name__ = f"kb_{name}"
    return rank


MODES = {f"kb-{name}": _mode(name) for name in ("lexical", "dense", "hybrid")}
