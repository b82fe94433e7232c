"""BERT-style backend parity with sentence-transformers, the registry, and model resolution."""

from __future__ import annotations

import numpy as np
import pytest

from embedhub.errors import (
    InvalidInputError,
    ModelLoadError,
    UnknownModelError,
    UnsupportedDimensionsError,
)
from embedhub.models.loading import resolve, spec_from_folder
from embedhub.models.registry import REGISTRY
from embedhub.models.spec import InputKind, Task

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "Embedding models map text to vectors; " * 20,
]


def test_minilm_matches_sentence_transformers(minilm_encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_encoder.folder), device="cpu")
    expected = reference.encode(SENTENCES[:3], normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm_encoder.encode(SENTENCES[:3]).vectors
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # sentence-transformers truncates silently at 256 tokens; embedhub does it only when asked.
    long_expected = reference.encode([SENTENCES[3] * 3], normalize_embeddings=True)
    with pytest.raises(InvalidInputError, match="limit of 256"):
        minilm_encoder.encode([SENTENCES[3] * 3])
    np.testing.assert_allclose(
        minilm_encoder.encode([SENTENCES[3] * 3], truncate=True).vectors, long_expected, atol=1e-5
    )


def test_minilm_framing_and_counts(minilm_encoder):
    ids = minilm_encoder.tokenize(["hello world"])[0]
    assert minilm_encoder.token_strings(ids) == ["[CLS]", "hello", "world", "[SEP]"]
    assert minilm_encoder.count_tokens(["hello world"]) == [4]
    assert minilm_encoder.encode(["hello world", "hi"]).token_counts == (4, 3)


def test_models_without_mrl_or_instructions_refuse_clearly(minilm_encoder):
    with pytest.raises(UnsupportedDimensionsError, match="only returns its native 384"):
        minilm_encoder.encode(["x"], dimensions=128)
    assert minilm_encoder.encode(["x"], dimensions=384).dimensions == 384
    with pytest.raises(InvalidInputError, match="not instruction-aware"):
        minilm_encoder.encode(["x"], kind="query", instruction="Find it")


def test_registry_lists_known_models_on_unknown_name():
    with pytest.raises(UnknownModelError) as caught:
        REGISTRY.get("Qwen4-Embedding")
    for name in (
        "Qwen3-Embedding-0.6B",
        "Qwen3-Embedding-4B",
        "Qwen3-Embedding-8B",
        "all-MiniLM-L6-v2",
    ):
        assert name in str(caught.value)


def test_qwen3_specs_are_frozen_facts():
    expected = {
        "Qwen3-Embedding-0.6B": 1024,
        "Qwen3-Embedding-4B": 2560,
        "Qwen3-Embedding-8B": 4096,
    }
    for name, dims in expected.items():
        spec = REGISTRY.get(name)
        assert (spec.dimensions, spec.max_tokens, spec.mrl_min_dimensions) == (dims, 32768, 32)
        assert spec.suffix_token_ids == (151643,)
        assert REGISTRY.get(f"Qwen/{name}") is spec
        for task in Task:
            assert spec.default_instruction(task)
    with pytest.raises(Exception, match=r"frozen|cannot assign"):
        spec.dimensions = 7  # type: ignore[misc]


def test_unknown_kind_and_task_refused():
    with pytest.raises(InvalidInputError, match="query, document"):
        InputKind.parse("passage")
    with pytest.raises(InvalidInputError, match="retrieval"):
        REGISTRY.get("Qwen3-Embedding-0.6B").default_instruction("poetry")


def test_resolution(settings, tiny_model_dir, tmp_path):
    auto = resolve("auto", settings)
    assert auto.spec.name in ("Qwen3-Embedding-0.6B", "multilingual-e5-small-q4", "all-MiniLM-L6-v2")
    local = resolve(str(tiny_model_dir), settings)
    assert local.source == "folder" and local.spec.random_weights
    assert spec_from_folder(tiny_model_dir).supports_mrl
    with pytest.raises(UnknownModelError, match="not a folder"):
        resolve("no-such-model", settings)
    with pytest.raises(ModelLoadError, match="not on this machine"):
        resolve("Qwen3-Embedding-8B", settings.model_copy(update={"model_dirs": [tmp_path]}))
    (tmp_path / "broken").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve(str(tmp_path / "broken"), settings)
