"""`fewshot`: logistic regression on k labelled examples per class, over several random seeds.

For each k and seed, up to k examples of every class are drawn from the dataset's pool (all of
a class when it has fewer), a logistic regression is fitted on their embeddings (texts) or on
the pair features [u, v, |u-v|, u*v] (sentence pairs), and it is scored on a fixed test set.
The report gives the mean and the standard deviation over seeds.

Texts are embedded as queries with the model's classification instruction; pair sides as
queries with its STS instruction (models without instructions embed the plain text).

Data: FewCLUE tasks use train_few_all as the pool and dev_few_all as the test set. LCQMC and AG
News have one labelled file here, so a seeded split holds out `test_size` items (default 2000)
as the test set and draws shots from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from embedhub.eval.core import Curve, EvalContext, Record, TaskResult, timed
from embedhub.eval.datasets import (
    ClassificationSet,
    DataMissingError,
    DatasetRef,
    load_refs,
    read_agnews,
    read_fewclue_pair_items,
    read_fewclue_texts,
    split_pool,
)
from embedhub.eval.metrics import mean_and_std
from embedhub.models.spec import Task


@dataclass
class FewshotOptions:
    """Options of the few-shot task (each field is a flag of `embedhub eval fewshot`)."""

    k: tuple[int, ...] = field(
        default=(5, 10, 20, 50), metadata={"help": "Comma-separated examples per class."}
    )
    seeds: int = field(default=5, metadata={"help": "Random draws per k."})
    test_size: int = field(
        default=2000,
        metadata={"help": "Held-out items where one file must be split (LCQMC, AG News)."},
    )
    c: float = field(
        default=1.0, metadata={"help": "Logistic regression C (inverse regularisation strength)."}
    )


def _read_lcqmc(path: Path, test_size: int, seed: int) -> ClassificationSet:
    items, labels = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[2].strip() in {"0", "1"}:
                items.append((parts[0], parts[1]))
                labels.append(parts[2].strip())
    size = min(test_size, len(items) // 2)
    pool, pool_labels, test, test_labels = split_pool(items, labels, size, seed)
    note = f"one file: seeded split into {len(pool)} pool / {len(test)} test pairs"
    return ClassificationSet("lcqmc", pool, pool_labels, test, test_labels, True, path, note, "zh")


def _read_agnews(path: Path, test_size: int, seed: int) -> ClassificationSet:
    texts, labels = read_agnews(path)
    size = min(test_size, len(texts) // 2)
    pool, pool_labels, test, test_labels = split_pool(texts, labels, size, seed)
    note = f"one file ({len(texts)} rows): seeded split into {len(pool)} pool / {len(test)} test items"
    return ClassificationSet("agnews", pool, pool_labels, test, test_labels, False, path, note, "en")


def _read_fewclue(name: str, train: Path, dev: Path) -> ClassificationSet:
    pool, pool_labels = read_fewclue_texts(train)
    test, test_labels = read_fewclue_texts(dev)
    return ClassificationSet(name, pool, pool_labels, test, test_labels, False, train.parent, "", "zh")


def _read_fewclue_pairs(name: str, train: Path, dev: Path) -> ClassificationSet:
    pool, pool_labels = read_fewclue_pair_items(train)
    test, test_labels = read_fewclue_pair_items(dev)
    return ClassificationSet(name, pool, pool_labels, test, test_labels, True, train.parent, "", "zh")


def fewshot_refs(options: FewshotOptions, seed: int) -> list[DatasetRef]:
    def fewclue(task: str, pairs: bool = False) -> DatasetRef:
        folder = f"fewclue-zh-classification/{task}"
        reader = _read_fewclue_pairs if pairs else _read_fewclue
        return DatasetRef(
            task,
            (f"{folder}/train_few_all.json", f"{folder}/dev_few_all.json"),
            partial(reader, task),
        )

    return [
        DatasetRef(
            "lcqmc",
            ("zh-semantic-matching/LCQMC/dev.txt",),
            lambda p: _read_lcqmc(p, options.test_size, seed),
        ),
        fewclue("tnews"),
        DatasetRef("agnews", ("ag-news-test/test.csv",), lambda p: _read_agnews(p, options.test_size, seed)),
        fewclue("eprstmt"),
        fewclue("bustm", pairs=True),
        fewclue("iflytek"),
        fewclue("csldcp"),
    ]


def load_classification_sets(
    ctx: EvalContext, options: FewshotOptions
) -> tuple[list[ClassificationSet], list[str]]:
    data: Path = ctx.data
    if (data / "train_few_all.json").exists() and (data / "dev_few_all.json").exists():
        return [_read_fewclue_folder(data)], []
    if not data.exists():
        raise DataMissingError("fewshot", [data])
    loaded, notes = load_refs("fewshot", data, fewshot_refs(options, ctx.seed), ctx.datasets)
    return list(loaded), notes


def _read_fewclue_folder(folder: Path) -> ClassificationSet:
    """A FewCLUE-style folder given directly: texts, or pairs when rows have `sentence2`."""
    first_line = (folder / "train_few_all.json").read_text(encoding="utf-8").splitlines()[0]
    reader = _read_fewclue_pairs if '"sentence2"' in first_line else _read_fewclue
    return reader(folder.name, folder / "train_few_all.json", folder / "dev_few_all.json")


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[u, v, |u - v|, u * v] (the SentenceBERT / InferSent pair classifier input)."""
    return np.hstack([u, v, np.abs(u - v), u * v])


def _features(ctx: EvalContext, items: list, pairs: bool, name: str) -> np.ndarray:
    if not pairs:
        return ctx.embed(items, kind="query", task=Task.CLASSIFICATION, description=name)
    texts = list(dict.fromkeys([a for a, _ in items] + [b for _, b in items]))
    vectors = ctx.embed(texts, kind="query", task=Task.STS, description=name)
    row = {text: i for i, text in enumerate(texts)}
    u = vectors[[row[a] for a, _ in items]]
    v = vectors[[row[b] for _, b in items]]
    return pair_features(u, v)


def draw_shots(labels: list[str], k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to k items per class (all of a class with fewer), in a seeded random draw."""
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    chosen: list[int] = []
    for label in sorted(by_class):
        members = np.asarray(by_class[label])
        take = min(k, len(members))
        chosen.extend(int(i) for i in rng.choice(members, size=take, replace=False))
    return np.asarray(sorted(chosen))


def seeded_shots(labels: list[str], k: int, seed: int) -> np.ndarray:
    """The draw for (k, seed): the same indices wherever it is asked for."""
    return draw_shots(labels, k, np.random.default_rng([seed, k]))


def evaluate_kshot(
    pool_x: np.ndarray,
    pool_y: list[str],
    test_x: np.ndarray,
    test_y: list[str],
    k: int,
    seeds: int,
    c: float = 1.0,
) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    accuracies, f1s, sizes = [], [], []
    for seed in range(seeds):
        shots = seeded_shots(pool_y, k, seed)
        train_y = [pool_y[i] for i in shots]
        if len(set(train_y)) < 2:
            continue
        model = LogisticRegression(C=c, max_iter=1000)
        model.fit(pool_x[shots], train_y)
        predicted = model.predict(test_x)
        accuracies.append(accuracy_score(test_y, predicted))
        f1s.append(f1_score(test_y, predicted, average="macro"))
        sizes.append(len(shots))
    accuracy, accuracy_std = mean_and_std(accuracies)
    f1, f1_std = mean_and_std(f1s)
    return {
        "accuracy": accuracy,
        "accuracy_std": accuracy_std,
        "f1_macro": f1,
        "f1_macro_std": f1_std,
        "train_size": float(np.mean(sizes)) if sizes else 0.0,
        "runs": float(len(accuracies)),
    }


def run(ctx: EvalContext, options: FewshotOptions) -> TaskResult:
    result = TaskResult("fewshot", ctx.model, headline="accuracy")
    with timed(result):
        sets, result.notes = load_classification_sets(ctx, options)
        for dataset in sets:
            test_items, test_labels = dataset.test_items, dataset.test_labels
            if ctx.limit is not None and ctx.limit < len(test_items):
                rng = np.random.default_rng(ctx.seed)
                keep = sorted(rng.choice(len(test_items), size=ctx.limit, replace=False))
                test_items = [test_items[i] for i in keep]
                test_labels = [test_labels[i] for i in keep]
            # Only pool items some draw uses are embedded (a pool can be thousands of items).
            used = sorted(
                {
                    int(i)
                    for k in options.k
                    for seed in range(options.seeds)
                    for i in seeded_shots(dataset.pool_labels, k, seed)
                }
            )
            used_x = _features(
                ctx, [dataset.pool_items[i] for i in used], dataset.pairs, f"{dataset.name} shots"
            )
            pool_x = np.zeros((len(dataset.pool_items), used_x.shape[1]), dtype=np.float32)
            pool_x[used] = used_x
            test_x = _features(ctx, test_items, dataset.pairs, f"{dataset.name} test")
            xs, ys, errs = [], [], []
            for k in options.k:
                scores = evaluate_kshot(
                    pool_x, dataset.pool_labels, test_x, test_labels, k, options.seeds, options.c
                )
                runs = int(scores.pop("runs"))
                train_size = scores.pop("train_size")
                result.records.append(
                    Record(
                        "fewshot",
                        ctx.model,
                        dataset.name,
                        scores,
                        mode=f"k={k}",
                        info={
                            "k": k,
                            "seeds": runs,
                            "train_size": train_size,
                            "test_size": len(test_items),
                            "classes": len(dataset.classes),
                            "features": "[u, v, |u-v|, u*v]" if dataset.pairs else "embedding",
                        },
                    )
                )
                xs.append(k)
                ys.append(scores["accuracy"])
                errs.append(scores["accuracy_std"])
            result.curves.append(
                Curve(dataset.name, xs, ys, "k (examples per class)", "accuracy", yerr=errs, xlog=True)
            )
            if dataset.note:
                result.notes.append(f"{dataset.name}: {dataset.note}")
    return result
