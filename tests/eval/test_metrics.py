"""Metric functions on hand-checked examples, and trec_eval cross-checked against our own code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedhub.eval import metrics as m


def test_ndcg_hand_checked():
    judged = {"a": 1, "b": 2}
    # ranking b (gain 2) at rank 1, x (0) at 2, a (1) at 3
    dcg = 2 / math.log2(2) + 0 + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m.ndcg_at_k(["b", "x", "a"], judged, 10) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k(["b", "a"], judged, 10) == pytest.approx(1.0)
    assert m.ndcg_at_k(["x", "y"], judged, 10) == 0.0
    # cut at 1: only b counts, ideal at 1 is also b
    assert m.ndcg_at_k(["b", "x", "a"], judged, 1) == pytest.approx(1.0)
    assert m.ndcg_at_k(["a", "b"], judged, 1) == pytest.approx(0.5)


def test_recall_mrr_precision_ap_hand_checked():
    judged = {"a": 1, "b": 1, "c": 0}
    ranking = ["x", "a", "c", "b", "y"]
    assert m.recall_at_k(ranking, judged, 2) == pytest.approx(0.5)
    assert m.recall_at_k(ranking, judged, 4) == pytest.approx(1.0)
    assert m.mrr_at_k(ranking, judged, 10) == pytest.approx(0.5)
    assert m.mrr_at_k(ranking, judged, 1) == 0.0
    assert m.precision_at_k(ranking, judged, 4) == pytest.approx(0.5)
    # AP: hits at ranks 2 and 4 -> (1/2 + 2/4) / 2
    assert m.average_precision(ranking, judged) == pytest.approx(0.5)
    # a relevant document never retrieved still counts in the denominator
    assert m.average_precision(["a"], judged) == pytest.approx(0.5)


def test_reference_means_over_judged_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has no relevant document
    rankings = {"q1": ["a"], "q2": ["x", "b"]}
    scores = m.ir_metrics_reference(qrels, rankings, ["mrr@10", "recall@1", "map"])
    assert scores == pytest.approx({"mrr@10": 0.75, "recall@1": 0.5, "map": 0.75})


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, rankings = {}, {}
    for q in range(25):
        judged = {
            str(d): int(g)
            for d, g in zip(rng.choice(docs, 6, replace=False), rng.integers(0, 3, 6), strict=True)
        }
        if not any(judged.values()):
            judged[docs[0]] = 1
        qrels[f"q{q}"] = judged
        if q != 3:  # one judged query gets no ranking at all: both must count it as 0
            rankings[f"q{q}"] = [str(d) for d in rng.permutation(docs)[: rng.integers(5, 60)]]
    return qrels, rankings


@pytest.mark.parametrize("seed", range(5))
def test_trec_eval_agrees_with_reference(seed):
    qrels, rankings = _random_case(seed)
    keys = ["ndcg@10", "ndcg@3", "recall@100", "recall@5", "mrr@10", "map", "precision@5"]
    library = m.ir_metrics(qrels, rankings, keys)
    reference = m.ir_metrics_reference(qrels, rankings, keys)
    assert list(library) == keys
    for key in keys:
        assert library[key] == pytest.approx(reference[key], abs=1e-4), key
    assert 0 < library["ndcg@10"] < 1


def test_trec_eval_perfect_and_empty_rankings():
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 2}}
    perfect = m.ir_metrics(qrels, {"q1": ["b", "a"], "q2": ["c"]}, ["ndcg@10", "recall@100", "mrr@10", "map"])
    assert perfect == pytest.approx({"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0, "map": 1.0})
    nothing = m.ir_metrics(qrels, {}, ["ndcg@10", "map"])
    assert nothing == {"ndcg@10": 0.0, "map": 0.0}
    with pytest.raises(ValueError, match="unknown metric"):
        m.ir_metrics(qrels, {}, ["ndcg"])


def test_top_k_indices_orders_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert m.top_k_indices(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]
    assert m.top_k_indices(scores, 10).tolist() == [[1, 3, 2, 0], [0, 1, 2, 3]]


def test_spearman_and_pearson_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y[:10] = y[0]  # ties
    assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert m.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    assert m.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert m.spearman([1, 2, 3], [3, 1, 0]) == pytest.approx(-1.0)


def test_best_threshold_accuracy_and_f1_hand_checked():
    scores = [0.9, 0.8, 0.7, 0.6, 0.3]
    labels = [1, 1, 0, 1, 0]
    accuracy, threshold = m.best_accuracy(scores, labels)
    # cut after 0.8 -> 4/5 correct (0.7 wrong); cut after 0.6 -> 4/5 too; the first best is kept
    assert accuracy == pytest.approx(0.8)
    assert threshold == pytest.approx(0.75)
    f1, precision, recall, f1_threshold = m.best_f1(scores, labels)
    # cut after 0.6: tp 3, fp 1, fn 0 -> f1 = 6/7
    assert f1 == pytest.approx(6 / 7)
    assert (precision, recall) == pytest.approx((0.75, 1.0))
    assert f1_threshold == pytest.approx(0.45)
    # ties are never split: both 0.5 items fall on the same side
    assert m.best_accuracy([0.5, 0.5], [1, 0])[0] == pytest.approx(0.5)


def test_binary_average_precision_matches_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    scores = np.round(rng.random(200), 2)  # rounding creates ties
    labels = (rng.random(200) < 0.3).astype(int)
    assert m.binary_average_precision(scores, labels) == pytest.approx(
        average_precision_score(labels, scores)
    )
    assert m.binary_average_precision([0.9, 0.1], [1, 0]) == pytest.approx(1.0)
    assert m.binary_average_precision([0.1, 0.9], [1, 0]) == pytest.approx(0.5)


def test_grouped_ranking_metrics():
    scores = [0.9, 0.1, 0.5, 0.2, 0.8, 0.7]
    labels = [0, 1, 1, 0, 0, 0]
    groups = ["q1", "q1", "q2", "q2", "q3", "q3"]  # q3 has no positive and is left out
    out = m.grouped_ranking_metrics(scores, labels, groups)
    assert out["mrr"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["map"] == pytest.approx((0.5 + 1.0) / 2)


def test_vector_helpers():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0]])
    assert m.paired_cosine(a, b) == pytest.approx([1 / math.sqrt(2), -1.0])
    assert m.cosine(np.zeros(2), np.ones(2)) == 0.0
    source = np.eye(3)
    target = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    assert m.nearest_neighbour_accuracy(source, target) == pytest.approx(1 / 3)
    assert m.mean_and_std([1.0, 3.0]) == pytest.approx((2.0, math.sqrt(2)))
    assert m.mean_and_std([2.0]) == (2.0, 0.0)
