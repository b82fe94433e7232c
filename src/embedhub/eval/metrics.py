"""Metric functions: pure, small, checked by hand in the tests.

IR metrics come from trec_eval through `pytrec_eval` (`ir_metrics`, what the BEIR numbers use);
the plain-Python implementations beside it (`ndcg_at_k`, `recall_at_k`, `mrr_at_k`,
`average_precision`, `ir_metrics_reference`) are the second implementation the tests
cross-check it against. Rankings are ordered lists of document ids (best first), so tie order is
decided before evaluation and both implementations see the same order.

Relevance follows trec_eval: a judgement > 0 is relevant; nDCG uses the judgement as the gain
with a log2(rank + 1) discount; recall@k divides by all relevant documents of the query; MAP
averages precision at each relevant document retrieved, over all relevant documents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

Qrels = Mapping[str, Mapping[str, int]]
Rankings = Mapping[str, Sequence[str]]

_KEY = re.compile(r"^(ndcg|recall|mrr|precision)@(\d+)$|^map$")


# --- ranking metrics, one query ------------------------------------------------------------------


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    gains = [max(judged.get(doc, 0), 0) for doc in ranking[:k]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def precision_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    return sum(1 for doc in ranking[:k] if judged.get(doc, 0) > 0) / k


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], 1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def average_precision(ranking: Sequence[str], judged: Mapping[str, int]) -> float:
    relevant = sum(1 for grade in judged.values() if grade > 0)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranking, 1):
        if judged.get(doc, 0) > 0:
            hits += 1
            total += hits / rank
    return total / relevant


def _parse(key: str) -> tuple[str, int | None]:
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"unknown metric {key!r}; use ndcg@K, recall@K, mrr@K, precision@K or map")
    if key == "map":
        return "map", None
    return match.group(1), int(match.group(2))


def ir_metrics_reference(qrels: Qrels, rankings: Rankings, keys: Iterable[str]) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query without a ranking scores 0)."""
    keys = list(keys)
    functions = {
        "ndcg": ndcg_at_k,
        "recall": recall_at_k,
        "mrr": mrr_at_k,
        "precision": precision_at_k,
    }
    totals = dict.fromkeys(keys, 0.0)
    queries = [qid for qid, judged in qrels.items() if any(g > 0 for g in judged.values())]
    for qid in queries:
        ranking = list(rankings.get(qid, ()))
        for key in keys:
            name, k = _parse(key)
            if name == "map":
                totals[key] += average_precision(ranking, qrels[qid])
            else:
                totals[key] += functions[name](ranking, qrels[qid], k)
    return {key: totals[key] / len(queries) if queries else 0.0 for key in keys}


def ir_metrics(qrels: Qrels, rankings: Rankings, keys: Iterable[str]) -> dict[str, float]:
    """The same means, computed by trec_eval (pytrec_eval).

    Rankings become scores that strictly decrease with rank, so trec_eval keeps our order. MRR@k
    is trec_eval's reciprocal rank on rankings cut at k (trec_eval has no cutoff for it).
    """
    import pytrec_eval

    keys = list(keys)
    judged = {
        qid: {doc: int(grade) for doc, grade in docs.items()}
        for qid, docs in qrels.items()
        if any(grade > 0 for grade in docs.values())
    }

    def run_at(depth: int | None) -> dict[str, dict[str, float]]:
        run = {}
        for qid in judged:
            ranking = list(rankings.get(qid, ()))[:depth]
            run[qid] = {doc: float(len(ranking) - rank) for rank, doc in enumerate(ranking)}
        return run

    measures: dict[str, tuple[str, str, int | None]] = {}
    for key in keys:
        name, k = _parse(key)
        if name == "ndcg":
            measures[key] = (f"ndcg_cut.{k}", f"ndcg_cut_{k}", None)
        elif name == "recall":
            measures[key] = (f"recall.{k}", f"recall_{k}", None)
        elif name == "precision":
            measures[key] = (f"P.{k}", f"P_{k}", None)
        elif name == "mrr":
            measures[key] = ("recip_rank", "recip_rank", k)
        else:
            measures[key] = ("map", "map", None)
    results: dict[str, float] = {}
    depths = {depth for _, _, depth in measures.values()}
    for depth in depths:
        wanted = {key: m for key, m in measures.items() if m[2] == depth}
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {m[0] for m in wanted.values()})
        per_query = evaluator.evaluate(run_at(depth))
        for key, (_, field, _) in wanted.items():
            # A judged query missing from the run (no ranking at all) counts as 0, as in the reference.
            total = sum(per_query.get(qid, {}).get(field, 0.0) for qid in judged)
            results[key] = total / len(judged) if judged else 0.0
    return {key: results[key] for key in keys}


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the column indices of the k largest scores, best first (ties: lower index first)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    rows = np.arange(scores.shape[0])[:, None]
    chosen = scores[rows, part]
    # lexsort: last key is primary -> sort by -score, then by column index
    order = np.lexsort((part, -chosen), axis=1)
    return part[rows, order]


# --- correlation and pair classification ---------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    from scipy.stats import rankdata

    return rankdata(values, method="average")


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of the average ranks."""
    return pearson(_ranks(np.asarray(x)), _ranks(np.asarray(y)))


def _sweep(scores: Sequence[float], labels: Sequence[float]):
    """Positives predicted as `score > t` for every cut between distinct scores, best first.

    Yields (tp, fp, threshold) after each group of tied scores, starting with nothing predicted.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = fp = 0
    yield 0, 0, float(s[0]) + 1.0 if len(s) else 0.0
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            tp += int(y[j])
            fp += int(not y[j])
            j += 1
        below = s[j] if j < len(s) else s[i] - 1.0
        yield tp, fp, (float(s[i]) + float(below)) / 2.0
        i = j


def best_accuracy(scores: Sequence[float], labels: Sequence[float]) -> tuple[float, float]:
    """The best accuracy of `score > threshold` over all thresholds, and that threshold."""
    y = np.asarray(labels) > 0
    positives, n = int(y.sum()), len(y)
    best, threshold = -1.0, 0.0
    for tp, fp, t in _sweep(scores, labels):
        accuracy = (tp + (n - positives - fp)) / n
        if accuracy > best:
            best, threshold = accuracy, t
    return best, threshold


def best_f1(scores: Sequence[float], labels: Sequence[float]) -> tuple[float, float, float, float]:
    """The best F1 of `score > threshold`: (f1, precision, recall, threshold)."""
    positives = int((np.asarray(labels) > 0).sum())
    best = (0.0, 0.0, 0.0, 0.0)
    for tp, fp, t in _sweep(scores, labels):
        if tp == 0:
            continue
        precision, recall = tp / (tp + fp), tp / positives
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best[0]:
            best = (f1, precision, recall, t)
    return best


def binary_average_precision(scores: Sequence[float], labels: Sequence[float]) -> float:
    """Area under the precision-recall step curve: sum over thresholds of (R_i - R_{i-1}) * P_i."""
    positives = int((np.asarray(labels) > 0).sum())
    if positives == 0:
        return 0.0
    total, previous_recall = 0.0, 0.0
    for tp, fp, _ in _sweep(scores, labels):
        if tp + fp == 0:
            continue
        recall = tp / positives
        total += (recall - previous_recall) * (tp / (tp + fp))
        previous_recall = recall
    return total


def grouped_ranking_metrics(
    scores: Sequence[float], labels: Sequence[float], groups: Sequence[str]
) -> dict[str, float]:
    """Answer-selection style MAP and MRR: rank each group's items by score (groups with a positive)."""
    by_group: dict[str, list[tuple[float, float, int]]] = {}
    for index, (score, label, group) in enumerate(zip(scores, labels, groups, strict=True)):
        by_group.setdefault(group, []).append((float(score), float(label), index))
    aps, rrs = [], []
    for items in by_group.values():
        if not any(label > 0 for _, label, _ in items):
            continue
        ordered = sorted(items, key=lambda item: (-item[0], item[2]))
        ranking = [str(index) for _, _, index in ordered]
        judged = {str(index): int(label > 0) for _, label, index in items}
        aps.append(average_precision(ranking, judged))
        rrs.append(mrr_at_k(ranking, judged, len(ranking)))
    return {"map": float(np.mean(aps)) if aps else 0.0, "mrr": float(np.mean(rrs)) if rrs else 0.0}


# --- vectors -------------------------------------------------------------------------------------


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else 0.0


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two equally shaped matrices."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def nearest_neighbour_accuracy(source: np.ndarray, target: np.ndarray) -> float:
    """Share of rows i whose most similar target row (dot product) is row i (first index on ties)."""
    if len(source) == 0:
        return 0.0
    best = np.argmax(np.asarray(source) @ np.asarray(target).T, axis=1)
    return float(np.mean(best == np.arange(len(source))))


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0
