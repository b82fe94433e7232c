"""The embedding cache keys vectors by what produced them: the model, the backend and the input ids."""

from __future__ import annotations

import numpy as np

from embedhub.engine.cache import EmbeddingCache, embed_through_cache
from embedhub.models.backends import load_encoder


def test_a_disk_cache_never_hands_one_backends_vectors_to_another(tiny_model_dir, settings, tmp_path):
    path = tmp_path / "vectors.sqlite"
    float32 = load_encoder(str(tiny_model_dir), settings.model_copy(update={"backend": "torch"}))
    bfloat16 = load_encoder(str(tiny_model_dir), settings.model_copy(update={"backend": "torch-bf16"}))
    inputs = float32.tokenize(["the same text", "另一段文字"])

    first, computed = embed_through_cache(float32, inputs, EmbeddingCache(0, path))
    assert computed == 2
    again, computed = embed_through_cache(float32, inputs, EmbeddingCache(0, path))
    assert computed == 0  # the same model and backend: served from disk
    np.testing.assert_array_equal(again, first)

    other, computed = embed_through_cache(bfloat16, inputs, EmbeddingCache(0, path))
    assert computed == 2  # another backend computes its own vectors
    np.testing.assert_allclose(other, bfloat16.embed_token_ids(inputs), rtol=0, atol=0)
    assert not np.array_equal(other, first)
