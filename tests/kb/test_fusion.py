"""The fusion of dense and lexical rankings (kb/fusion.py), shared by kb search and the evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from embedhub.errors import InvalidInputError
from embedhub.kb.fusion import fuse, reciprocal_rank_fusion, weighted_fusion
from embedhub.kb.search import fuse_hits
from embedhub.kb.store import ChunkRow, Hit

#: dense finds "a" far ahead of the rest; lexical ranks "b" first by a hair over "c" and "a"
DENSE = [("a", 0.95), ("b", 0.40), ("c", 0.39), ("d", 0.38)]
LEXICAL = [("b", 12.0), ("c", 11.9), ("a", 11.8), ("d", 0.5)]


def _order(fused) -> list[str]:
    return [entry.identifier for entry in fused]


def test_reciprocal_rank_fusion_uses_k_60_and_keeps_first_seen_order_on_ties():
    fused = reciprocal_rank_fusion({"dense": ["a", "b"], "lexical": ["b", "c"]})
    scores = {entry.identifier: entry.score for entry in fused}
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61) and scores["c"] == pytest.approx(1 / 62)
    assert _order(fused) == ["b", "a", "c"] and fused[0].retrievers == ["dense", "lexical"]
    # a: 1/61 + 1/62 = b: 1/62 + 1/61, a seen first
    assert _order(reciprocal_rank_fusion({"x": ["a", "b"], "y": ["b", "a"]})) == ["a", "b"]
    assert _order(reciprocal_rank_fusion({"x": ["a", "b", "c"], "y": ["c", "a"]}, k=60)) == ["a", "c", "b"]


def test_weighted_fusion_adds_normalised_scores_and_floors_missing_items():
    dense = [("a", 0.90), ("b", 0.80), ("c", 0.10)]
    lexical = [("b", 30.0), ("d", 29.0), ("a", 1.0)]
    fused = weighted_fusion({"dense": dense, "lexical": lexical}, {"dense": 0.5, "lexical": 0.5})
    assert fused[0].identifier == "b" and fused[0].retrievers == ["dense", "lexical"]  # strong in both
    by_id = {entry.identifier: entry for entry in fused}
    assert by_id["d"].retrievers == ["lexical"] and by_id["c"].retrievers == ["dense"]
    # z-scores: dense mean 0.6, lexical mean 20; a missing item gets the list's lowest value
    dense_z = (np.array([0.9, 0.8, 0.1]) - 0.6) / np.std([0.9, 0.8, 0.1])
    lexical_z = (np.array([30.0, 29.0, 1.0]) - 20.0) / np.std([30.0, 29.0, 1.0])
    assert by_id["d"].score == pytest.approx(0.5 * dense_z.min() + 0.5 * lexical_z[1])
    assert by_id["a"].score == pytest.approx(0.5 * dense_z[0] + 0.5 * lexical_z[2])
    only_dense = weighted_fusion({"dense": dense, "lexical": lexical}, {"dense": 1.0, "lexical": 0.0})
    assert _order(only_dense)[:3] == ["a", "b", "c"]
    single = weighted_fusion({"dense": [("x", 0.5)], "lexical": []}, {"dense": 0.5})
    assert _order(single) == ["x"] and single[0].score == 0.0


def test_fuse_keeps_the_margin_rank_fusion_throws_away():
    assert _order(fuse(DENSE, LEXICAL)) == ["a", "b", "c", "d"]
    assert _order(fuse(DENSE, LEXICAL, fusion="rrf")) == ["b", "a", "c", "d"]
    # dense_weight moves the balance: all lexical is the lexical order
    assert _order(fuse(DENSE, LEXICAL, dense_weight=0.0)) == ["b", "c", "a", "d"]
    with pytest.raises(InvalidInputError, match="choose one of: weighted, rrf"):
        fuse(DENSE, LEXICAL, fusion="max")


def test_search_fuses_hits_with_the_shared_function():
    def hits(ranking):
        return [
            Hit(ChunkRow(i, f"doc-{i}", 1, 0, "p", "md", f"text {i}", "t", 0, 1, None, None, (), "h"), score)
            for i, score in ranking
        ]

    for fusion in ("weighted", "rrf"):
        fused = fuse_hits(hits(DENSE), hits(LEXICAL), fusion, 0.5)
        expected = fuse(DENSE, LEXICAL, fusion=fusion)
        assert [(hit.row.id, hit.score, hit.retrievers) for hit in fused] == [
            (entry.identifier, entry.score, entry.retrievers) for entry in expected
        ]
        assert all(hit.row.text == f"text {hit.row.id}" for hit in fused)  # each hit keeps its row
