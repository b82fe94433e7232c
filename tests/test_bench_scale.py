"""`embedhub bench-scale` at a tiny size: the report's fields, the budget's estimate, and recall
measured against exact search (a degraded index must show in it)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from embedhub.bench import scale
from embedhub.cli import app


def test_truth_is_the_brute_force_top_10_of_the_generated_vectors():
    data = scale.PlantedData(1500, 16, 12, seed=3)
    vectors = np.concatenate([data.batch(start, min(1500, start + 400))[1] for start in range(0, 1500, 400)])
    expected = np.argsort(-(data.query_vectors @ vectors.T), axis=1, kind="stable")[:, : scale.K]
    np.testing.assert_array_equal(scale.exact_truth_pass(data, 1500, 400), expected)
    # every query is a noisy copy of a stored vector, and its text carries words planted there only
    rows, _ = data.batch(int(data.sources[0]), int(data.sources[0]) + 1)
    assert all(planted in rows[0].text.split() for planted in data.planted_words(0))
    assert set(data.planted_words(0)) <= set(data.query_texts[0].split())


def test_scale_bench_runs_small_and_skips_what_the_budget_cannot_hold(tmp_path):
    arguments = (
        "--sizes 2000,100000000 --stores lancedb --dims 32 --queries 20 --exact-queries 5 --budget 120"
    )
    result = CliRunner().invoke(app, ["bench-scale", *arguments.split(), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "scale-results.json").read_text())
    measured, skipped = report["cells"]
    assert measured["status"] == "ok", measured
    for key in ("ingest_rows_per_second", "disk_mb", "vector_index_seconds", "peak_rss_mb"):
        assert measured[key] > 0, key
    for key in ("hybrid", "dense", "dense_exact"):
        assert 0 < measured[key]["p50_ms"] <= measured[key]["p99_ms"]
    assert measured["vector_index"]["type"] == "IVF_SQ" and measured["vector_index"]["rows_indexed"] == 2000
    assert measured["exact_recall_at_10"] == 1.0, "exact search finds exactly the brute-force top 10"
    assert measured["recall_at_10"] >= 0.95 and measured["hybrid_source_at_10"] >= 0.9
    assert skipped["status"] == "skipped" and skipped["estimated_seconds"] > 120
    assert "| lancedb | 2,000 |" in (tmp_path / "scale.md").read_text()
    assert (tmp_path / "scale.png").stat().st_size > 0


def test_recall_falls_when_the_index_returns_wrong_neighbours(tmp_path, monkeypatch):
    """Recall is measured against exact search: an index that answers badly is caught."""
    from embedhub.kb.store.lance import LanceStore

    honest = LanceStore.dense_search

    def degraded(self, vector, k, where, *, exact=False):
        hits = honest(self, vector, max(k, 50), where, exact=exact)
        return hits[:k] if exact else hits[-k:]  # ranks 41-50 instead of the best 10

    monkeypatch.setattr(LanceStore, "dense_search", degraded)
    options = scale.ScaleOptions(sizes=[1000], stores=["lancedb"], dims=16, queries=10, exact_queries=3)
    cell = scale.run_cell("lancedb", 1000, options, tmp_path / "cell")
    assert cell["exact_recall_at_10"] == 1.0
    assert cell["recall_at_10"] < 0.5


def test_remote_bench_alternates_plain_client_and_ingest_rounds(tiny_model_dir):
    """`bench-scale --remote` at a tiny size, against a real `embedhub serve`: every round has a
    plain-client and a `kb add` figure, the ratio is of their medians, and nothing failed."""
    options = scale.RemoteOptions(model=str(tiny_model_dir), endpoint_counts=[1], texts=24, words=12,
                                  client_batch=8, rounds=2)  # fmt: skip
    report = scale.run_remote(options, say=lambda line: None)
    ingest = report["ingest"]
    assert len(report["direct_rounds"]) == len(ingest["rounds"]) == len(ingest["ratio_per_round"]) == 2
    assert ingest["chunks"] == 24 and ingest["failed"] == 0
    expected = np.median(ingest["rounds"]) / np.median(report["direct_rounds"])
    assert abs(ingest["ratio_to_direct"] - expected) < 0.01
    assert report["rows"][0]["endpoints"] == 1 and report["rows"][0]["ratio_to_one"] == 1.0
    assert "alternating rounds" in scale.remote_markdown(report)
    if scale.one_core_each():  # two CPUs here: the endpoint and the client measured apart too
        pinned = report["ingest_one_core_each"]
        assert len(pinned["rounds"]) == len(pinned["direct_rounds"]) == 2 and pinned["failed"] == 0
        assert "One core each" in scale.remote_markdown(report)
