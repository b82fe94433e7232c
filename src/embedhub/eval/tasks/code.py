"""`code`: CoSQA natural-language query -> Python function search.

Each query has one relevant function in a 6,267-function code base. Modes as in `retrieval`
(dense with the model's code-search instruction on queries, BM25 over the knowledge base's
analyzer, which splits identifiers into their parts, hybrid by the knowledge base's fusion);
MRR@10, nDCG@10 and Recall@k. CoSQA's labelled query/code pairs (cosqa-dev.json), when present,
are also scored as pair classification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from embedhub.eval.core import Curve, EvalContext, Record, TaskResult, timed
from embedhub.eval.datasets import DataMissingError, read_cosqa, read_cosqa_pairs
from embedhub.eval.metrics import ir_metrics
from embedhub.eval.retrieval_modes import (
    DENSE_WEIGHT_HELP,
    FUSION_HELP,
    MODES_HELP,
    RetrievalJob,
    RetrievalOptions,
    check_fusion,
    get_mode,
)
from embedhub.eval.tasks.pairs import pair_cosines, pair_metrics
from embedhub.eval.tasks.retrieval import evaluate_modes
from embedhub.kb.fusion import DENSE_WEIGHT
from embedhub.models.spec import Task

CODE_METRICS = ("mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100")
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)


@dataclass
class CodeOptions:
    """Options of the code task (each field is a flag of `embedhub eval code`)."""

    modes: tuple[str, ...] = field(
        default=("dense", "lexical", "hybrid"),
        metadata={"help": MODES_HELP},
    )
    depth: int = field(default=1000, metadata={"help": "Functions ranked per query."})
    fusion: str = field(default="weighted", metadata={"help": FUSION_HELP})
    dense_weight: float = field(default=DENSE_WEIGHT, metadata={"help": DENSE_WEIGHT_HELP})


def run(ctx: EvalContext, options: CodeOptions) -> TaskResult:
    for mode in options.modes:
        get_mode(mode)
    check_fusion(options.fusion, options.dense_weight)
    result = TaskResult("code", ctx.model, headline="mrr@10")
    with timed(result):
        folder = ctx.data if (ctx.data / "code_idx_map.txt").exists() else ctx.data / "cosqa-code-search"
        if not (folder / "code_idx_map.txt").exists():
            raise DataMissingError("code", [ctx.data / "code_idx_map.txt", folder / "code_idx_map.txt"])
        dataset = read_cosqa(folder, ctx.split).subsample_queries(ctx.limit, ctx.seed)
        job = RetrievalJob(
            ctx,
            dataset,
            RetrievalOptions(
                modes=options.modes,
                depth=options.depth,
                fusion=options.fusion,
                dense_weight=options.dense_weight,
            ),
            task=Task.CODE,
        )
        try:
            result.records.extend(evaluate_modes(job, options.modes, CODE_METRICS, "code"))
            for mode in options.modes:
                recalls = ir_metrics(dataset.qrels, job.rankings(mode), [f"recall@{k}" for k in CURVE_KS])
                result.curves.append(
                    Curve(
                        mode,
                        list(CURVE_KS),
                        list(recalls.values()),
                        "k",
                        "recall@k",
                        panel=dataset.name,
                        xlog=True,
                    )
                )
        finally:
            job.close()
        if dataset.split != "test":
            result.notes.append(f"cosqa: scored on the `{dataset.split}` split (the test file is not here)")
        qa = folder / "cosqa-dev.json"
        if qa.exists():
            pairs = read_cosqa_pairs(qa, "cosqa-qa-dev", split="dev").subsample(ctx.limit, ctx.seed)
            metrics, info = pair_metrics(pairs, pair_cosines(ctx, pairs))
            metrics.pop("spearman", None)
            result.records.append(
                Record("code", ctx.model, pairs.name, metrics, split="dev", mode="pairs", info=info)
            )
        else:
            result.notes.append(f"cosqa-qa-dev: not on this machine ({qa}); skipped")
    return result
