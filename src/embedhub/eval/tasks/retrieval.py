"""`retrieval`: BEIR-layout data, ranked by several modes (eval/retrieval_modes.py), scored with
trec_eval."""

from __future__ import annotations

from collections.abc import Sequence

from embedhub.eval.core import EvalContext, Record, TaskResult, timed
from embedhub.eval.datasets import DataMissingError, DatasetRef, RetrievalSet, load_refs, read_beir
from embedhub.eval.metrics import ir_metrics
from embedhub.eval.retrieval_modes import RetrievalJob, RetrievalOptions, check_fusion, get_mode

RETRIEVAL_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map")


def evaluate_modes(
    job: RetrievalJob, modes: Sequence[str], metrics: Sequence[str], task_name: str
) -> list[Record]:
    """One record per mode, each kept in the run's journal the moment it is scored (a resumed run
    takes the modes an earlier one finished)."""
    records = []
    dataset = job.dataset
    for number, mode in enumerate(modes, start=1):

        def score(mode: str = mode, number: int = number) -> list[Record]:
            job.ctx.progress.message(
                f"{task_name}: {dataset.name} / {mode} (mode {number}/{len(modes)}; "
                f"{len(dataset.query_ids)} queries, {len(dataset.corpus_ids)} documents)"
            )
            rankings = job.rankings(mode)
            scores = ir_metrics(dataset.qrels, rankings, metrics)
            return [
                Record(
                    task=task_name,
                    model=job.ctx.model,
                    dataset=dataset.name,
                    split=dataset.split,
                    mode=mode,
                    metrics=scores,
                    info={
                        "queries": len(dataset.query_ids),
                        "documents": len(dataset.corpus_ids),
                        "depth": job.options.depth,
                        **({"dimensions": job.ctx.output_dims} if mode != "lexical" else {}),
                    },
                )
            ]

        description = {
            "task": task_name,
            "dataset": dataset.name,
            "split": dataset.split,
            "mode": mode,
            "queries": len(dataset.query_ids),
            "documents": len(dataset.corpus_ids),
        }
        records.extend(job.ctx.part(description, score, independent_of=("modes",)))
    return records


def retrieval_refs(split: str | None) -> list[DatasetRef]:
    return [
        DatasetRef("scifact", ("beir-scifact",), lambda p: read_beir(p, split, name="scifact")),
        DatasetRef("cmrc2018", ("cmrc2018-zh-retrieval",), lambda p: read_beir(p, split, name="cmrc2018")),
    ]


def load_retrieval_sets(
    ctx: EvalContext, default: Sequence[str] = ()
) -> tuple[list[RetrievalSet], list[str]]:
    """BEIR datasets: `--data` itself when it is a BEIR folder, else the known ones under it."""
    if (ctx.data / "corpus.jsonl").exists():
        sets, notes = [read_beir(ctx.data, ctx.split)], []
    else:
        if not ctx.data.exists():
            raise DataMissingError("retrieval", [ctx.data])
        loaded, notes = load_refs("retrieval", ctx.data, retrieval_refs(ctx.split), ctx.datasets or default)
        sets = list(loaded)
    return [dataset.subsample_queries(ctx.limit, ctx.seed) for dataset in sets], notes


def run(ctx: EvalContext, options: RetrievalOptions) -> TaskResult:
    for mode in options.modes:
        get_mode(mode)  # fail before any encoding
    check_fusion(options.fusion, options.dense_weight)
    result = TaskResult("retrieval", ctx.model, headline="ndcg@10")
    with timed(result):
        sets, result.notes = load_retrieval_sets(ctx)
        for dataset in sets:
            job = RetrievalJob(ctx, dataset, options)
            try:
                result.records.extend(evaluate_modes(job, options.modes, RETRIEVAL_METRICS, "retrieval"))
            finally:
                job.close()
            if dataset.split != "test":
                result.notes.append(
                    f"{dataset.name}: scored on the `{dataset.split}` split (no qrels/test.tsv here)"
                )
    if ctx.blank_texts:
        result.notes.append(f"{ctx.blank_texts} blank texts got a zero vector")
    return result
