"""The rerank stage of knowledge-base search: the best fused candidates scored by a reranker (the
tiny random Qwen3-Reranker: the pipeline, not the quality), a candidate count, a score threshold."""

from __future__ import annotations

import pytest

from embedhub.errors import InvalidInputError
from embedhub.kb.ingest import Ingestor
from embedhub.kb.search import Searcher, default_rerank_candidates

TOPICS = [
    "Beijing is the capital of China and its political centre.",
    "Paris is the capital of France, on the river Seine.",
    "Mitochondria are the powerhouse of the cell.",
    "Photosynthesis turns light into chemical energy in plants.",
    "The Great Wall of China stretches across northern China.",
    "Quantum computers use qubits that can be entangled.",
    "Rivers carry sediment from mountains to the sea.",
    "The capital city hosts the national government.",
]


@pytest.fixture
def filled(collection, tiny_encoder, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for index, text in enumerate(TOPICS):
        (folder / f"note{index}.txt").write_text(text)
    Ingestor(collection, tiny_encoder).ingest([folder])
    return collection


def test_rerank_orders_the_fused_candidates_by_the_reranker(filled, tiny_encoder, tiny_reranker):
    query = "What is the capital of China?"
    fused = Searcher(filled, tiny_encoder).search(query, k=len(TOPICS))
    results = Searcher(filled, tiny_encoder, tiny_reranker).search(query, k=5, rerank_candidates=6)
    expected = tiny_reranker.score(query, [result.text for result in fused[:6]])
    by_text = dict(zip([result.text for result in fused[:6]], expected, strict=True))
    assert len(results) == 5
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for result in results:
        assert result.text in by_text  # only the 6 best fused candidates were reranked
        assert result.rerank_score == pytest.approx(by_text[result.text], abs=1e-6) == result.score
        assert f"rerank:{tiny_reranker.name}" in result.retrievers
    assert all(result.rerank_score is None for result in fused)


def test_min_score_drops_what_the_reranker_scored_low(filled, tiny_encoder, tiny_reranker):
    searcher = Searcher(filled, tiny_encoder, tiny_reranker)
    everything = searcher.search("capital", k=len(TOPICS))
    threshold = sorted(r.score for r in everything)[len(everything) // 2]
    kept = searcher.search("capital", k=len(TOPICS), min_score=threshold)
    assert 0 < len(kept) < len(everything) and all(r.score >= threshold for r in kept)


def test_rerank_can_be_switched_off_and_must_have_a_reranker(filled, tiny_encoder, tiny_reranker):
    plain = Searcher(filled, tiny_encoder, tiny_reranker).search("capital", k=3, rerank=False)
    assert all(not any(name.startswith("rerank:") for name in r.retrievers) for r in plain)
    with pytest.raises(InvalidInputError, match="no reranker"):
        Searcher(filled, tiny_encoder).search("capital", rerank=True)
    with pytest.raises(InvalidInputError, match="min_score applies to reranker scores"):
        Searcher(filled, tiny_encoder).search("capital", min_score=0.5)
    with pytest.raises(InvalidInputError, match="rerank_candidates=0"):
        Searcher(filled, tiny_encoder, tiny_reranker).search("capital", rerank_candidates=0)
    assert default_rerank_candidates(5) == 30 and default_rerank_candidates(20) == 60
