"""Every task end to end on the synthetic data root with the tiny random-weight Qwen3 model.

Random weights give meaningless quality, so the data is built to make some answers certain
(identical texts have cosine 1) and the rest of the assertions check structure and consistency.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedhub.errors import EmbedhubError
from embedhub.eval.core import EvalContext
from embedhub.eval.datasets import DataMissingError, read_beir
from embedhub.eval.retrieval_modes import MODES, RetrievalJob, RetrievalOptions, register_mode
from embedhub.eval.tasks import TASKS, get_task, make_options, run_task
from embedhub.eval.tasks.fewshot import draw_shots, pair_features
from embedhub.eval.tasks.mrl import mrl_dims
from embedhub.eval.tasks.throughput import forward_batch, synthetic_inputs
from embedhub.models.spec import Task


@pytest.fixture
def ctx(tiny_encoder, data_root):
    return EvalContext(tiny_encoder, data_root)


def by(records, **fields):
    return [r for r in records if all(getattr(r, k) == v for k, v in fields.items())]


def test_registry_lists_choices_and_validates_options():
    assert list(TASKS) == [
        "retrieval",
        "sts",
        "pairs",
        "fewshot",
        "bitext",
        "code",
        "long-context",
        "mrl",
        "throughput",
    ]
    with pytest.raises(EmbedhubError, match="choose one of: retrieval, sts, pairs"):
        get_task("retreival")
    options = make_options(get_task("fewshot"), {"k": "5, 10", "seeds": "3"})
    assert options.k == (5, 10) and options.seeds == 3
    assert make_options(get_task("retrieval"), {"modes": ["dense"]}).modes == ("dense",)
    with pytest.raises(EmbedhubError, match="valid: b, dense_weight, depth, fusion, k1, modes, rrf_k"):
        make_options(get_task("retrieval"), {"mode": "dense"})


def test_context_embed_matches_the_encoder(tiny_encoder, ctx):
    texts = ["first text", "second text", "first text"]
    queries = ctx.embed(texts, kind="query", task=Task.STS)
    expected = tiny_encoder.encode(
        texts, kind="query", instruction=tiny_encoder.spec.default_instruction(Task.STS)
    ).vectors
    np.testing.assert_allclose(queries, expected, atol=1e-5)
    # MRL applied after the cache equals the encoder's own dimensions=32
    small = ctx.embed(texts, kind="document", dimensions=32)
    np.testing.assert_allclose(small, tiny_encoder.encode(texts, dimensions=32).vectors, atol=1e-5)
    # documents get no instruction, so they differ from the same text as a query
    assert not np.allclose(ctx.embed(texts, kind="document"), queries, atol=1e-3)
    # blank text: a zero vector, counted
    blank = ctx.embed(["  "], kind="document")
    assert not blank.any() and ctx.blank_texts == 1
    with pytest.raises(EmbedhubError, match="outside"):
        EvalContext(tiny_encoder, ctx.data, dimensions=8)


def test_retrieval_all_modes(ctx):
    result = run_task("retrieval", ctx)
    assert {r.mode for r in result.records} == {"dense", "lexical", "hybrid"}
    lexical = by(result.records, mode="lexical")[0]
    assert lexical.split == "test"  # test.tsv is preferred over train.tsv
    assert set(lexical.metrics) == {"ndcg@10", "recall@100", "mrr@10", "map"}
    # each query repeats its document's rare words: BM25 puts it first
    assert lexical.metrics["mrr@10"] == pytest.approx(1.0)
    for record in result.records:
        assert all(0.0 <= v <= 1.0 for v in record.metrics.values())
        assert record.info["queries"] == 6 and record.info["documents"] == 12


def test_raw_hybrid_fuses_as_the_knowledge_base_does(ctx, data_root, monkeypatch):
    """The raw `hybrid` mode is the product's hybrid: the same fusion over the same scores (where
    dense finds one document far ahead, RRF would rank the lexical side's close call first)."""
    from embedhub.eval import retrieval_modes
    from embedhub.kb.search import fuse_hits
    from embedhub.kb.store import ChunkRow, Hit
    from tests.kb.test_fusion import DENSE, LEXICAL

    dataset = read_beir(data_root / "beir-scifact", "test")
    monkeypatch.setattr(retrieval_modes, "_dense_scored", lambda job: dict.fromkeys(dataset.query_ids, DENSE))
    monkeypatch.setattr(
        retrieval_modes, "_lexical_scored", lambda job: dict.fromkeys(dataset.query_ids, LEXICAL)
    )

    def hits(ranking):
        return [
            Hit(ChunkRow(i, i, 1, 0, "p", "text", "t", "t", 0, 1, None, None, (), "h"), score)
            for i, score in ranking
        ]

    for fusion in ("weighted", "rrf"):
        job = RetrievalJob(ctx, dataset, RetrievalOptions(fusion=fusion))
        expected = [hit.row.id for hit in fuse_hits(hits(DENSE), hits(LEXICAL), fusion, 0.5)]
        assert job.rankings("hybrid") == dict.fromkeys(dataset.query_ids, expected)
        assert expected == (["a", "b", "c", "d"] if fusion == "weighted" else ["b", "a", "c", "d"])
    job = RetrievalJob(ctx, dataset, RetrievalOptions(depth=2, dense_weight=0.0))
    assert job.rankings("hybrid")[dataset.query_ids[0]] == ["b", "c"]  # all lexical, cut to depth
    assert job.rankings("dense")[dataset.query_ids[0]] == ["a", "b", "c", "d"]
    with pytest.raises(EmbedhubError, match=r"unknown fusion 'max'; choose one of: weighted, rrf"):
        run_task("retrieval", ctx, {"fusion": "max"})
    with pytest.raises(EmbedhubError, match=r"dense_weight=2\.0 is outside 0\.\.1"):
        run_task("code", ctx, {"dense_weight": 2.0})


def test_retrieval_split_and_plugged_mode(tiny_encoder, data_root):
    def oracle(job):  # a stand-in for the knowledge base: returns the judged documents
        return {qid: list(job.dataset.qrels[qid]) for qid in job.dataset.query_ids}

    register_mode("oracle", oracle)
    try:
        ctx = EvalContext(tiny_encoder, data_root, split="train", datasets=("scifact",))
        result = run_task("retrieval", ctx, {"modes": ["oracle"]})
    finally:
        MODES.pop("oracle")
    (record,) = result.records
    assert record.split == "train" and record.metrics["ndcg@10"] == pytest.approx(1.0)
    assert any("train" in note for note in result.notes)
    with pytest.raises(EmbedhubError, match="choose from: dense, lexical, hybrid"):
        run_task("retrieval", ctx, {"modes": ["oracle"]})


def test_retrieval_through_the_knowledge_base(tiny_encoder, data_root, monkeypatch):
    from embedhub.eval import kb_modes

    runs = []
    original = kb_modes.KnowledgeBaseRun.__init__

    def remember(self, job):
        original(self, job)
        runs.append(self)

    monkeypatch.setattr(kb_modes.KnowledgeBaseRun, "__init__", remember)
    ctx = EvalContext(tiny_encoder, data_root, datasets=("scifact",))
    modes = ["kb-lexical", "kb-dense", "kb-hybrid"]
    result = run_task("retrieval", ctx, {"modes": modes})
    assert [r.mode for r in result.records] == modes
    (run,) = runs  # one collection, shared by the three modes
    assert run.chunks >= 12  # every document ingested, titles as headings
    assert sorted(run.document_of_path.values()) == sorted(f"d{i}" for i in range(12))
    assert not run.work.exists(), "the temporary collection must be removed with the job"
    lexical = by(result.records, mode="kb-lexical")[0]
    # the query's rare words are in its document's title and text only: the KB's BM25 finds it
    assert lexical.metrics["mrr@10"] == pytest.approx(1.0)
    for record in result.records:
        assert record.info["queries"] == 6 and 0.0 <= record.metrics["ndcg@10"] <= 1.0


def test_retrieval_on_a_beir_folder_given_directly(tiny_encoder, data_root):
    ctx = EvalContext(tiny_encoder, data_root / "beir-scifact", limit=3)
    result = run_task("retrieval", ctx, {"modes": ["lexical"]})
    assert result.records[0].dataset == "beir-scifact" and result.records[0].info["queries"] == 3


def test_sts_identical_pairs_rank_highest(ctx):
    result = run_task("sts", ctx)
    (record,) = result.records
    assert record.dataset == "stsb-en-dev" and record.info["pairs"] == 12
    # the six score-5 pairs are identical texts (cosine 1); the rest are unrelated
    assert record.metrics["spearman"] > 0.5
    assert any("stsb-en-test: not on this machine" in note for note in result.notes)


def test_pairs_identical_positives_are_perfectly_separated(ctx):
    result = run_task("pairs", ctx)
    lcqmc = by(result.records, dataset="lcqmc-dev")[0]
    assert lcqmc.metrics["accuracy"] == pytest.approx(1.0)
    assert lcqmc.metrics["ap"] == pytest.approx(1.0)
    assert lcqmc.metrics["f1"] == pytest.approx(1.0)
    trec = by(result.records, dataset="trecqa-dev")[0]
    assert {"map", "mrr"} <= set(trec.metrics)
    assert 0 < trec.metrics["mrr"] <= 1


def test_pairs_on_a_file_given_directly(tiny_encoder, data_root):
    path = data_root / "zh-semantic-matching" / "LCQMC" / "dev.txt"
    result = run_task("pairs", EvalContext(tiny_encoder, path, limit=10))
    (record,) = result.records
    assert record.dataset == "dev" and record.info["pairs"] == 10


def test_fewshot_curves_and_spread(ctx):
    result = run_task("fewshot", ctx, {"k": [1, 8], "seeds": 2, "test_size": 8, "c": 100.0})
    datasets = {r.dataset for r in result.records}
    assert datasets == {"lcqmc", "tnews", "agnews"}
    assert {c.label for c in result.curves} == datasets
    tnews = by(result.records, dataset="tnews")
    assert [r.mode for r in tnews] == ["k=1", "k=8"]
    assert tnews[0].info["train_size"] == 3 and tnews[0].info["seeds"] == 2
    # k=8 takes every pool item (4 per class); the test items are the pool items, so a
    # high-C logistic regression on distinct vectors recalls them
    assert tnews[-1].info["train_size"] == 12
    assert tnews[-1].metrics["accuracy"] >= 0.9
    assert tnews[-1].metrics["accuracy_std"] == pytest.approx(0.0)
    lcqmc = by(result.records, dataset="lcqmc")[0]
    assert lcqmc.info["features"] == "[u, v, |u-v|, u*v]" and lcqmc.info["test_size"] == 8
    assert any("seeded split" in note for note in result.notes)


def test_fewshot_helpers():
    labels = ["a"] * 5 + ["b"] * 2
    shots = draw_shots(labels, 3, np.random.default_rng(0))
    assert sorted(labels[i] for i in shots) == ["a", "a", "a", "b", "b"]
    u, v = np.array([[1.0, -2.0]]), np.array([[3.0, 1.0]])
    assert pair_features(u, v).tolist() == [[1.0, -2.0, 3.0, 1.0, 2.0, 3.0, 3.0, -2.0]]


def test_bitext_identity_translations(ctx):
    result = run_task("bitext", ctx)
    deu = by(result.records, dataset="tatoeba-deu")[0]
    assert deu.metrics == pytest.approx({"accuracy": 1.0, "acc_to_eng": 1.0, "acc_from_eng": 1.0})
    assert by(result.records, dataset="tatoeba-average")[0].metrics["accuracy"] == pytest.approx(1.0)
    missing = run_task("bitext", EvalContext(ctx.encoder, ctx.data, datasets=("fra", "deu")))
    assert any("fra" in note for note in missing.notes)


def test_code_search_and_pairs(ctx):
    result = run_task("code", ctx)
    lexical = by(result.records, mode="lexical")[0]
    assert lexical.metrics["mrr@10"] == pytest.approx(1.0)  # query words are the function's name parts
    assert {"recall@1", "recall@5", "recall@10", "recall@100", "ndcg@10"} <= set(lexical.metrics)
    assert by(result.records, dataset="cosqa-qa-dev")[0].info["pairs"] == 6
    curve = next(c for c in result.curves if c.label == "lexical")
    assert curve.x == [1, 2, 5, 10, 20, 50, 100] and curve.y == sorted(curve.y)


def test_long_context_segments_and_truncation(ctx, tiny_encoder):
    result = run_task("long-context", ctx, {"segment_tokens": 40})
    (record,) = result.records
    content = tiny_encoder.content_ids([(ctx.data / "long-docs-en" / "story.txt").read_text()])[0]
    room = 40 - 1  # the tiny Qwen3 frames each input with one <|endoftext|>
    assert record.info["segments"] == math.ceil(len(content) / room)
    assert record.info["segment_tokens"] == 40 and not record.info["whole_truncated"]
    assert len(record.info["cos_by_segment"]) == record.info["segments"]
    assert -1 <= record.metrics["cos_mean"] <= 1

    # a whole-document cap equal to the segment size makes the whole vector the first segment
    capped = run_task("long-context", ctx, {"segment_tokens": 40, "whole_max_tokens": 40})
    (record,) = capped.records
    assert record.info["whole_truncated"] and record.info["whole_tokens"] == 40
    assert record.metrics["cos_first"] == pytest.approx(1.0, abs=1e-5)
    assert any("whole-document cap of 40 tokens" in note for note in capped.notes)


def test_mrl_retrieval_matches_dense_at_native_size(ctx):
    result = run_task("mrl", ctx, {"metric": "retrieval"})
    assert [r.mode for r in result.records] == ["dims=32", "dims=64"]
    native = result.records[-1]
    dense = by(run_task("retrieval", ctx, {"modes": ["dense"]}).records, mode="dense")[0]
    assert native.metrics["ndcg@10"] == pytest.approx(dense.metrics["ndcg@10"])
    assert native.metrics["index_mib"] == pytest.approx(12 * 64 * 4 / 2**20)
    assert result.curves[0].x == [32, 64]


def test_mrl_sts_and_sizes(ctx):
    result = run_task("mrl", ctx, {"metric": "sts"})
    assert [r.dataset for r in result.records] == ["stsb-en-dev", "stsb-en-dev"]
    assert all(r.metrics["spearman"] > 0.5 for r in result.records)
    assert mrl_dims(384) == [32, 64, 128, 256, 384]
    assert mrl_dims(1024) == [32, 64, 128, 256, 512, 1024]
    assert mrl_dims(1024, requested=(16, 256, 2048)) == [256]
    with pytest.raises(EmbedhubError, match="choose from: retrieval, sts"):
        run_task("mrl", ctx, {"metric": "bleu"})


def test_throughput(ctx, tiny_encoder):
    result = run_task("throughput", ctx, {"lengths": [16, 64, 10**6], "batch_size": 2, "batches": 1})
    assert [r.mode for r in result.records] == ["len=16", "len=64"]
    for record in result.records:
        assert record.metrics["docs_per_s"] > 0
        assert record.metrics["tokens_per_s"] == pytest.approx(
            record.metrics["docs_per_s"] * record.info["length"]
        )
        assert record.metrics["peak_rss_mib"] > 0 and record.info["forward_batch"] == 2
    assert any("1000000" in note and "skipped" in note for note in result.notes)
    inputs = synthetic_inputs(tiny_encoder, 50, 3)
    assert [len(ids) for ids in inputs] == [50, 50, 50] and inputs[0] != inputs[1]
    saved = tiny_encoder.max_batch_size
    with forward_batch(tiny_encoder, 3, 10) as effective:
        assert tiny_encoder.max_batch_size == 3 and effective == 3
    assert tiny_encoder.max_batch_size == saved


@pytest.mark.parametrize("task", ["retrieval", "sts", "pairs", "fewshot", "bitext", "code", "long-context"])
def test_missing_data_names_the_path(tiny_encoder, tmp_path, task):
    with pytest.raises(DataMissingError) as error:
        run_task(task, EvalContext(tiny_encoder, tmp_path / "absent"))
    assert str(tmp_path / "absent") in str(error.value)
    assert task in str(error.value)
