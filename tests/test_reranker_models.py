"""Rerankers: Qwen3-Reranker against an independent implementation of its model card, batch ==
single, truncation, the registry and local resolution, and cross-encoders against
sentence-transformers' own CrossEncoder. All on tiny random weights built offline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from embedhub.errors import (
    ConfigurationError,
    InputTooLongError,
    InvalidInputError,
    ModelLoadError,
    UnknownModelError,
)
from embedhub.models.reranker import (
    QWEN3_RERANK_INSTRUCTION,
    QWEN3_RERANK_MAX_TOKENS,
    RERANKERS,
    load_reranker,
    resolve_reranker,
)
from tests.reference_qwen3_reranker import ReferenceQwen3Reranker

#: float32 on both sides; the only differences are padding widths and summation order
TOLERANCE = 1e-5
QUERY = "What is the capital of China?"
DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. " * 6,
    "北京是中国的首都。",
    "def capital(country): return CAPITALS[country]",
    "",
]


@pytest.fixture(scope="module")
def reference(tiny_reranker_dir):
    return ReferenceQwen3Reranker(tiny_reranker_dir)


def test_scores_match_the_model_card_reference(tiny_reranker, reference):
    ours = tiny_reranker.score_pairs(QUERY, DOCUMENTS)
    theirs = np.array(reference.scores(QUERY, DOCUMENTS))
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    # random weights, yet the scores must differ per document (by 1000x the tolerance), or the
    # comparison proves nothing
    assert float(ours.max() - ours.min()) > 0.01
    assert all(0.0 <= value <= 1.0 for value in ours)


def test_instruction_is_the_model_cards(tiny_reranker, reference):
    custom = "Retrieve passages that name a city"
    ours = tiny_reranker.score_pairs(QUERY, DOCUMENTS[:3], instruction=custom)
    np.testing.assert_allclose(ours, reference.scores(QUERY, DOCUMENTS[:3], custom), atol=TOLERANCE, rtol=0)
    default = tiny_reranker.score_pairs(QUERY, DOCUMENTS[:3])
    assert not np.allclose(ours, default, atol=1e-4)
    np.testing.assert_allclose(
        default, tiny_reranker.score_pairs(QUERY, DOCUMENTS[:3], instruction=QWEN3_RERANK_INSTRUCTION)
    )


def test_batch_equals_single(tiny_reranker):
    together = tiny_reranker.score_pairs(QUERY, DOCUMENTS)
    alone = [tiny_reranker.score_pairs(QUERY, [document])[0] for document in DOCUMENTS]
    np.testing.assert_allclose(together, alone, atol=TOLERANCE, rtol=0)
    assert tiny_reranker.score(QUERY, DOCUMENTS) == pytest.approx(list(together), abs=1e-7)


def test_pairs_are_framed_like_the_model_card(tiny_reranker, reference):
    pairs = tiny_reranker.tokenize_pairs(QUERY, DOCUMENTS[:2])
    expected = reference.process_inputs(
        [f"<Instruct>: {QWEN3_RERANK_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {d}" for d in DOCUMENTS[:2]]
    )
    for pair, ids, mask in zip(pairs, expected["input_ids"], expected["attention_mask"], strict=True):
        assert list(pair.ids) == ids[mask.bool()].tolist()


def test_truncation_keeps_the_suffix(tiny_reranker, tiny_reranker_dir):
    limit = 96
    long_document = "Beijing has been the capital for centuries. " * 40
    with pytest.raises(InputTooLongError, match="limit of 96"):
        tiny_reranker.tokenize_pairs(QUERY, ["short", long_document], max_tokens=limit)
    short, cut = tiny_reranker.tokenize_pairs(
        QUERY, ["short", long_document], truncate=True, max_tokens=limit
    )
    assert not short.truncated and cut.truncated and len(cut) == limit
    suffix = tiny_reranker.suffix_ids
    assert (
        cut.ids[-len(suffix) :] == suffix
        and cut.ids[: len(tiny_reranker.prefix_ids)] == tiny_reranker.prefix_ids
    )
    # the same cut as the model card's tokenizer call with max_length = limit
    reference = ReferenceQwen3Reranker(tiny_reranker_dir, max_length=limit)
    body = f"<Instruct>: {QWEN3_RERANK_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {long_document}"
    expected = reference.process_inputs([body])
    assert list(cut.ids) == expected["input_ids"][0].tolist()
    np.testing.assert_allclose(
        tiny_reranker.score_inputs([cut]), reference.compute_logits(expected), atol=TOLERANCE, rtol=0
    )


def test_empty_query_is_refused(tiny_reranker):
    with pytest.raises(InvalidInputError, match="query is empty"):
        tiny_reranker.score_pairs("  ", ["a document"])


def test_registry_holds_the_three_qwen3_rerankers_as_the_model_card_says():
    assert RERANKERS.names() == ["Qwen3-Reranker-0.6B", "Qwen3-Reranker-4B", "Qwen3-Reranker-8B"]
    spec = RERANKERS.find("qwen/qwen3-reranker-4b")
    assert spec is not None and spec.name == "Qwen3-Reranker-4B" and spec.hub_id == "Qwen/Qwen3-Reranker-4B"
    assert spec.max_tokens == QWEN3_RERANK_MAX_TOKENS == 8192
    assert (
        spec.default_instruction
        == "Given a web search query, retrieve relevant passages that answer the query"
    )
    assert spec.format_pair("q", "d", None) == (
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
        "<Query>: q\n<Document>: d"
    )
    assert 'the answer can only be "yes" or "no"' in spec.system_prompt and spec.system_prompt in spec.prefix


def test_unknown_name_lists_the_choices(settings):
    with pytest.raises(
        UnknownModelError, match=r"Qwen3-Reranker-0\.6B, Qwen3-Reranker-4B, Qwen3-Reranker-8B"
    ):
        resolve_reranker("bge-reranker-nonexistent", settings)


def test_registry_name_resolves_from_model_dirs_only(settings, tiny_reranker_dir, tmp_path):
    nowhere = settings.model_copy(update={"model_dirs": [tmp_path / "empty"]})
    with pytest.raises(ModelLoadError, match="EMBEDHUB_MODEL_DIRS"):
        resolve_reranker("Qwen3-Reranker-0.6B", nowhere)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "Qwen3-Reranker-0.6B").symlink_to(tiny_reranker_dir, target_is_directory=True)
    found = settings.model_copy(update={"model_dirs": [tmp_path / "models"]})
    spec, folder = resolve_reranker("qwen3-reranker-0.6b", found)
    assert spec.name == "Qwen3-Reranker-0.6B" and folder == tmp_path / "models" / "Qwen3-Reranker-0.6B"


def test_a_folder_names_its_random_weights(tiny_reranker):
    assert tiny_reranker.spec.random_weights and tiny_reranker.name == "random-qwen3-reranker-tiny"
    assert tiny_reranker.spec.family == "qwen3" and tiny_reranker.backend == "torch"


def test_an_embedding_model_folder_is_not_a_reranker(tiny_model_dir, settings):
    with pytest.raises(ModelLoadError, match="not Qwen3-Reranker"):
        load_reranker(str(tiny_model_dir), settings)


@pytest.mark.parametrize("disguise", ["pooling", "name"])
def test_a_qwen3_embedding_lm_folder_is_not_a_reranker(tiny_reranker_dir, tmp_path, settings, disguise):
    """Qwen3-Embedding declares Qwen3ForCausalLM like the reranker: its pooling module or its
    name must give it away, or it would load and score every pair with a meaningless head."""
    folder = tmp_path / ("Qwen3-Embedding-0.6B" if disguise == "name" else "my-model")
    shutil.copytree(tiny_reranker_dir, folder)
    if disguise == "pooling":
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match=r"Qwen3 embedding model .*not Qwen3-Reranker"):
        load_reranker(str(folder), settings)


def test_cross_encoder_matches_sentence_transformers(tiny_cross_encoder_dir, settings):
    from sentence_transformers import CrossEncoder

    ours = load_reranker(str(tiny_cross_encoder_dir), settings)
    assert ours.spec.family == "cross-encoder" and ours.max_tokens == 128
    documents = [*[d for d in DOCUMENTS if d][:3], "Paris is the capital of France."]
    theirs = CrossEncoder(str(tiny_cross_encoder_dir), device="cpu").predict([(QUERY, d) for d in documents])
    scores = ours.score_pairs(QUERY, documents)
    np.testing.assert_allclose(scores, np.asarray(theirs).reshape(-1), atol=TOLERANCE, rtol=0)
    assert float(scores.max() - scores.min()) > 0.01
    with pytest.raises(InvalidInputError, match="no instruction"):
        ours.score_pairs(QUERY, documents, instruction="anything")
    cut = ours.tokenize_pairs(QUERY, ["word " * 300], truncate=True)[0]
    assert cut.truncated and len(cut) == 128 and cut.ids[-1] == ours.tokenizer.token_to_id("[SEP]")


def test_bfloat16_is_refused_where_the_cpu_emulates_it(tiny_reranker_dir, settings, monkeypatch):
    from embedhub.models import backends

    monkeypatch.setattr(backends, "kernel_speed", {"float32": 52.0, "bfloat16": 0.8}.__getitem__)
    chosen = settings.model_copy(update={"backend": "torch-bf16", "cpu_class": "avx2"})
    with pytest.raises(ConfigurationError, match=r"torch-bf16 would be 65x slower than float32"):
        load_reranker(str(tiny_reranker_dir), chosen)
