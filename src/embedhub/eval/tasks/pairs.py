"""`sts` and `pairs`: cosine of sentence-pair vectors against gold scores or 0/1 labels.

Both sides of a symmetric pair are embedded alike: as queries with the model's STS instruction
("Retrieve semantically similar text" for Qwen3; models without instructions embed the plain
text). Question/answer and query/code pairs are asymmetric: the first side is a query with the
task's instruction, the second a document.

`sts` reports Spearman (and Pearson) of cosine vs the gold score. `pairs` reports Spearman of
cosine vs the label, average precision, and the best-threshold accuracy and F1 (thresholds are
chosen on the same data, as MTEB does; they are upper bounds for a fixed threshold), plus
per-question MAP / MRR where pairs share a question (TrecQA).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedhub.eval.core import EvalContext, Record, TaskResult, timed
from embedhub.eval.datasets import (
    DataMissingError,
    DatasetRef,
    PairSet,
    load_refs,
    read_jsonl_pairs,
    read_pair_file,
    read_pairs_csv,
    read_pairs_tsv,
    read_pawsx,
    read_sick,
    read_sts16,
    read_trecqa,
)
from embedhub.eval.metrics import (
    best_accuracy,
    best_f1,
    binary_average_precision,
    grouped_ranking_metrics,
    paired_cosine,
    pearson,
    spearman,
)
from embedhub.models.spec import Task


@dataclass
class PairOptions:
    """Options of the sts / pairs tasks (none beyond the shared ones yet)."""


def _stsb(lang: str, split: str, optional: bool = False) -> DatasetRef:
    return DatasetRef(
        f"stsb-{lang}-{split}",
        (f"stsb-multi-mt-en-zh/stsb-{lang}-{split}.csv",),
        lambda p: read_pairs_csv(p, f"stsb-{lang}-{split}", graded=True, split=split),
        optional,
    )


def _chinese_stsb(split: str, optional: bool = False) -> DatasetRef:
    return DatasetRef(
        f"chinese-stsb-{split}",
        (f"zh-semantic-matching/Chinese-STS-B/sts-b-{split}.txt",),
        lambda p: read_pairs_tsv(p, f"chinese-stsb-{split}", graded=True, split=split),
        optional,
    )


def _sick(split: str, file: str, optional: bool = False) -> DatasetRef:
    return DatasetRef(
        f"sick-{split}",
        (f"en-sts-sick-sts16/sick2014/{file}",),
        lambda p: read_sick(p, f"sick-{split}", split=split),
        optional,
    )


def _sts16(part: str) -> DatasetRef:
    return DatasetRef(
        f"sts16-{part}",
        (f"en-sts-sick-sts16/semeval-sts/2016/{part}.test.tsv",),
        lambda p: read_sts16(p, f"sts16-{part}"),
    )


STS_REFS = [
    _stsb("en", "train"),
    _stsb("en", "dev"),
    _stsb("en", "test", optional=True),
    _stsb("zh", "train"),
    _stsb("zh", "dev"),
    _stsb("zh", "test", optional=True),
    _chinese_stsb("train"),
    _chinese_stsb("dev"),
    _chinese_stsb("test", optional=True),
    _sick("train", "SICK_train.txt"),
    _sick("trial", "SICK_trial.txt"),
    _sick("test", "SICK_test_annotated.txt", optional=True),
    *[
        _sts16(part)
        for part in ("answer-answer", "headlines", "plagiarism", "postediting", "question-question")
    ],
]


def _tsv_pairs(name: str, rel: str, split: str, optional: bool = False) -> DatasetRef:
    return DatasetRef(name, (rel,), lambda p: read_pairs_tsv(p, name, graded=False, split=split), optional)


PAIR_REFS = [
    _tsv_pairs("lcqmc-dev", "zh-semantic-matching/LCQMC/dev.txt", "dev"),
    _tsv_pairs("lcqmc-test", "zh-semantic-matching/LCQMC/test.txt", "test", optional=True),
    _tsv_pairs("afqmc-dev", "zh-semantic-matching/AFQMC/dev.txt", "dev"),
    _tsv_pairs("bustm-oppo-xiaobu-dev", "zh-semantic-matching/OPPO-xiaobu/dev.txt", "dev"),
    DatasetRef(
        "pawsx-zh-dev",
        ("zh-semantic-matching/PAWS-X/dev_2k.tsv",),
        lambda p: read_pawsx(p, "pawsx-zh-dev", split="dev"),
    ),
    DatasetRef(
        "pawsx-zh-test",
        ("zh-semantic-matching/PAWS-X/test_2k.tsv",),
        lambda p: read_pawsx(p, "pawsx-zh-test", split="test"),
        optional=True,
    ),
    *[
        DatasetRef(
            f"bustm-fewclue-{split}",
            (f"fewclue-zh-classification/bustm/{file}",),
            lambda p, split=split: read_jsonl_pairs(p, f"bustm-fewclue-{split}", split=split),
            optional=split == "test",
        )
        for split, file in (
            ("train", "train_few_all.json"),
            ("dev", "dev_few_all.json"),
            ("test", "test_public.json"),
        )
    ],
    *[
        DatasetRef(
            f"trecqa-{split}",
            (f"en-sts-sick-sts16/trecqa-wang/{split}.csv",),
            lambda p, split=split: read_trecqa(p, f"trecqa-{split}", split=split),
        )
        for split in ("dev", "test")
    ],
]


def pair_cosines(ctx: EvalContext, pairs: PairSet) -> np.ndarray:
    if pairs.asymmetric is None:
        texts = list(dict.fromkeys(pairs.first + pairs.second))
        vectors = ctx.embed(texts, kind="query", task=Task.STS, description=pairs.name)
        row = {text: i for i, text in enumerate(texts)}
        first = vectors[[row[t] for t in pairs.first]]
        second = vectors[[row[t] for t in pairs.second]]
    else:
        first = ctx.embed(
            pairs.first, kind="query", task=pairs.asymmetric, description=f"{pairs.name} queries"
        )
        second = ctx.embed(pairs.second, kind="document", description=f"{pairs.name} documents")
    return paired_cosine(first, second)


def pair_metrics(pairs: PairSet, cosines: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics and side information (thresholds, counts) of one pair set."""
    info: dict[str, float] = {"pairs": len(pairs)}
    if pairs.graded:
        return {"spearman": spearman(cosines, pairs.labels), "pearson": pearson(cosines, pairs.labels)}, info
    accuracy, accuracy_threshold = best_accuracy(cosines, pairs.labels)
    f1, precision, recall, f1_threshold = best_f1(cosines, pairs.labels)
    metrics = {
        "spearman": spearman(cosines, pairs.labels),
        "ap": binary_average_precision(cosines, pairs.labels),
        "accuracy": accuracy,
        "f1": f1,
        "precision": precision,
        "recall": recall,
    }
    if pairs.groups:
        metrics.update(grouped_ranking_metrics(cosines, pairs.labels, pairs.groups))
    info.update(
        accuracy_threshold=accuracy_threshold,
        f1_threshold=f1_threshold,
        positive_share=float(np.mean(pairs.labels > 0)),
    )
    return metrics, info


def load_pair_sets(ctx: EvalContext, task: str, refs: list[DatasetRef]) -> tuple[list[PairSet], list[str]]:
    """`--data` itself when it is a pair file, else the known datasets under it."""
    data: Path = ctx.data
    if data.is_file():
        sets, notes = [read_pair_file(data)], []
    elif not data.exists():
        raise DataMissingError(task, [data])
    else:
        loaded, notes = load_refs(task, data, refs, ctx.datasets)
        sets = list(loaded)
    return [pairs.subsample(ctx.limit, ctx.seed) for pairs in sets], notes


def _run(ctx: EvalContext, task: str, refs: list[DatasetRef]) -> TaskResult:
    result = TaskResult(task, ctx.model, headline="spearman")
    with timed(result):
        sets, result.notes = load_pair_sets(ctx, task, refs)
        for pairs in sets:
            cosines = pair_cosines(ctx, pairs)
            metrics, info = pair_metrics(pairs, cosines)
            result.records.append(Record(task, ctx.model, pairs.name, metrics, split=pairs.split, info=info))
    return result


def run_sts(ctx: EvalContext, options: PairOptions) -> TaskResult:
    return _run(ctx, "sts", STS_REFS)


def run_pairs(ctx: EvalContext, options: PairOptions) -> TaskResult:
    return _run(ctx, "pairs", PAIR_REFS)
