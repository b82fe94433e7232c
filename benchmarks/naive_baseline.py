"""The knowledge base against the naive hybrid pipeline, on the same split, in one run.

The naive pipeline is what a short script gets from off-the-shelf parts:
- lexical: `bm25s` with its own tokenizer, English Snowball stemming (PyStemmer) and English stop
  words, its default BM25 (k1=1.5, b=0.75). bm25s's tokenizer keeps a run of Chinese characters
  as one token, so for a Chinese corpus the script splits words with `jieba.lcut` instead (what
  anyone indexing Chinese with bm25s writes);
- dense: the same embedding model on whole documents (`title + " " + text`, cut at the model's
  limit), queries in the model's query form: the evaluation suite's raw `dense` mode;
- hybrid: plain reciprocal rank fusion (k=60) of the two top-1000 lists.
The knowledge base is measured through `kb-lexical`, `kb-dense` and `kb-hybrid`
(embedhub.eval.kb_modes: every document ingested as a file, searched, chunk hits collapsed to
documents). With `--reranker NAME|FOLDER` also `kb-hybrid-rerank`: the best `--rerank-candidates`
fused chunks (default 30) reranked, then collapsed to documents.

Usage: python benchmarks/naive_baseline.py [--data ../shared/data] [--model auto]
           [--datasets scifact,cmrc2018] [--out docs/retrieval-baseline.json] [--cache FILE]
           [--reranker Qwen3-Reranker-0.6B] [--rerank-candidates 30]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import date
from pathlib import Path

import numpy as np

from embedhub.config import Settings
from embedhub.eval.core import EvalContext
from embedhub.eval.kb_modes import knowledge_base_run
from embedhub.eval.metrics import ir_metrics, top_k_indices
from embedhub.eval.retrieval_modes import RetrievalJob, RetrievalOptions
from embedhub.eval.tasks.retrieval import retrieval_refs
from embedhub.kb.fusion import reciprocal_rank_fusion
from embedhub.models.backends import load_encoder

METRICS = ["ndcg@10", "recall@100"]
DEPTH = 1000
CHINESE = {"cmrc2018"}
COLUMNS = ("naive-lexical", "naive-dense", "naive-hybrid", "kb-lexical", "kb-dense", "kb-hybrid")


def naive_lexical(job: RetrievalJob) -> dict[str, list[str]]:
    import bm25s
    import Stemmer

    dataset = job.dataset
    if dataset.name in CHINESE:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        corpus = [[w for w in jieba.lcut(text) if w.strip()] for text in dataset.corpus_texts]
        queries = [[w for w in jieba.lcut(text) if w.strip()] for text in dataset.query_texts]
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        vocabulary = set(retriever.vocab_dict)
        queries = [[w for w in q if w in vocabulary] for q in queries]
    else:
        stemmer = Stemmer.Stemmer("english")
        corpus = bm25s.tokenize(dataset.corpus_texts, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        queries = bm25s.tokenize(
            dataset.query_texts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        queries = [[w for w in q if w in retriever.vocab_dict] for q in queries]
    out = {}
    for query_id, terms in zip(dataset.query_ids, queries, strict=True):
        if not terms:
            out[query_id] = []
            continue
        scores = np.asarray(retriever.get_scores(terms))
        best = top_k_indices(scores[None, :], DEPTH)[0]
        out[query_id] = [dataset.corpus_ids[i] for i in best if scores[i] > 0]
    return out


def measure(job: RetrievalJob, reranker=None, rerank_candidates: int = 30) -> dict[str, dict[str, float]]:
    dataset = job.dataset
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, rankings: dict[str, list[str]], seconds: float) -> None:
        metrics = ir_metrics(dataset.qrels, rankings, METRICS)
        rows[name] = {key: round(value, 4) for key, value in metrics.items()}
        rows[name]["seconds"] = round(seconds, 1)
        print(f"{dataset.name:10s} {name:14s} {rows[name]}", flush=True)

    started = time.perf_counter()
    lexical = naive_lexical(job)
    score("naive-lexical", lexical, time.perf_counter() - started)
    started = time.perf_counter()
    dense = job.rankings("dense")
    score("naive-dense", dense, time.perf_counter() - started)
    hybrid = {
        q: [
            entry.identifier
            for entry in reciprocal_rank_fusion(
                {"dense": dense.get(q, []), "lexical": lexical.get(q, [])}, k=60
            )
        ][:DEPTH]
        for q in dataset.query_ids
    }
    score("naive-hybrid", hybrid, 0.0)
    for mode in ("kb-lexical", "kb-dense", "kb-hybrid"):
        started = time.perf_counter()
        rankings = job.rankings(mode)
        score(mode, rankings, time.perf_counter() - started)
    if reranker is not None:
        started = time.perf_counter()
        rankings = knowledge_base_run(job).rankings(job, "hybrid", reranker, rerank_candidates)
        score("kb-hybrid-rerank", rankings, time.perf_counter() - started)
    return rows


def markdown(results: dict) -> str:
    lines = [
        "| dataset | split | queries | naive lexical | naive dense | naive hybrid | kb lexical | kb dense "
        "| kb hybrid | kb hybrid - naive hybrid |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["datasets"].items():
        rows = entry["modes"]
        cells = [f"{rows[mode]['ndcg@10']:.4f}" for mode in COLUMNS]
        delta = rows["kb-hybrid"]["ndcg@10"] - rows["naive-hybrid"]["ndcg@10"]
        head = f"| {name} | {entry['split']} | {entry['queries']} | "
        lines.append(head + " | ".join(cells) + f" | {delta:+.4f} |")
    reranked = [
        (name, entry) for name, entry in results["datasets"].items() if "kb-hybrid-rerank" in entry["modes"]
    ]
    if reranked:
        lines += [
            "",
            f"| dataset | kb hybrid | kb hybrid + {results['reranker']} | difference |",
            "|---|---|---|---|",
        ]
        for name, entry in reranked:
            before, after = (
                entry["modes"]["kb-hybrid"]["ndcg@10"],
                entry["modes"]["kb-hybrid-rerank"]["ndcg@10"],
            )
            lines.append(f"| {name} | {before:.4f} | {after:.4f} | {after - before:+.4f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="auto")
    parser.add_argument("--datasets", default="scifact,cmrc2018")
    parser.add_argument("--split", default=None, help="qrels split (default: the only one present)")
    parser.add_argument("--out", type=Path, default=Path("docs/retrieval-baseline.json"))
    parser.add_argument("--cache", type=Path, default=None, help="SQLite file of vectors kept across runs")
    parser.add_argument("--reranker", default=None, help="also rerank the hybrid (a name or a folder)")
    parser.add_argument("--rerank-candidates", type=int, default=30, help="fused chunks reranked per query")
    args = parser.parse_args()
    encoder = load_encoder(args.model, Settings())
    reranker = None
    if args.reranker:
        from embedhub.models.reranker import load_reranker

        reranker = load_reranker(args.reranker, Settings())
    wanted = args.datasets.split(",")
    results = {"date": date.today().isoformat(), "model": encoder.spec.name, "backend": encoder.backend,
               "datasets": {}}  # fmt: skip
    if reranker is not None:
        results["reranker"] = reranker.name
        results["rerank_candidates"] = args.rerank_candidates
    for ref in retrieval_refs(args.split):
        if ref.name not in wanted:
            continue
        folder = args.data / ref.paths[0]
        if not folder.exists():
            print(f"{ref.name}: {folder} is absent; skipped")
            continue
        dataset = ref.read(folder)
        context = EvalContext(encoder, args.data)
        if args.cache:
            context.use_cache_file(args.cache)
        job = RetrievalJob(context, dataset, RetrievalOptions(depth=DEPTH))
        try:
            modes = measure(job, reranker, args.rerank_candidates)
        finally:
            job.close()
        results["datasets"][ref.name] = {
            "split": dataset.split, "documents": len(dataset.corpus_ids), "queries": len(dataset.query_ids),
            "modes": modes,
        }  # fmt: skip
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
