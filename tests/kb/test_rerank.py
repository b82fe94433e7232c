"""Qwen3-Reranker scoring on a tiny random-weight Qwen3 causal LM (real vocabulary), built offline."""

from __future__ import annotations

import pytest

from embedhub.errors import ModelLoadError
from embedhub.kb.rerank import QWEN3_RERANK_PREFIX, load_reranker


@pytest.fixture(scope="module")
def tiny_reranker_dir(tmp_path_factory, settings):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from embedhub.models.qwen_tokenizer import VOCAB_SIZE, load_qwen_tokenizer, save_tokenizer_files
    from embedhub.models.random_model import SHAPES

    folder = tmp_path_factory.mktemp("tiny-reranker")
    torch.manual_seed(1)
    Qwen3ForCausalLM(Qwen3Config(vocab_size=VOCAB_SIZE, **SHAPES["tiny"])).save_pretrained(str(folder))
    save_tokenizer_files(load_qwen_tokenizer(settings.cache_dir), folder)
    return folder


def test_qwen3_reranker_scores_are_probabilities_and_batch_invariant(tiny_reranker_dir):
    reranker = load_reranker(str(tiny_reranker_dir))
    passages = ["Beijing is the capital.", "Gravity attracts bodies. " * 5, "短文"]
    together = reranker.score("capital of China", passages)
    alone = [reranker.score("capital of China", [p])[0] for p in passages]
    assert all(0.0 <= s <= 1.0 for s in together)
    assert together == pytest.approx(alone, abs=1e-5)
    ids = reranker.pair_ids("q", "d")
    prefix = reranker.tokenizer.encode(QWEN3_RERANK_PREFIX, add_special_tokens=False).ids
    assert ids[: len(prefix)] == prefix


def test_reranker_needs_a_local_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not a local model folder"):
        load_reranker(str(tmp_path / "missing"))
