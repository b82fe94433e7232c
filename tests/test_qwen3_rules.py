"""QWEN3.md rule 8: parity invariants on the tiny random-weight Qwen3, plus an independent
numpy reference forward pass, and the model-card scores when the real weights are present."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from embedhub.errors import InputTooLongError, InvalidInputError, UnsupportedDimensionsError
from embedhub.models.spec import ENDOFTEXT_ID
from embedhub.models.transformer import pool
from tests.reference_qwen3 import ReferenceQwen3

TEXTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.",
    "短文本",
    "def add(a, b):\n    return a + b",
]


def test_input_ends_in_exactly_one_endoftext(tiny_encoder):
    for text in ["hello", "hello<|endoftext|>", "多语言 text"]:
        for kind in ("query", "document"):
            ids = tiny_encoder.tokenize([text], kind=kind)[0]
            assert ids[-1] == ENDOFTEXT_ID
            assert ids[-2] != ENDOFTEXT_ID


def test_query_instruction_format(tiny_encoder):
    query = tiny_encoder.tokenize(["Explain gravity"], kind="query")[0]
    expected = tiny_encoder.content_ids(
        [
            "Instruct: Given a web search query, retrieve relevant passages that answer the query"
            "\nQuery:Explain gravity"
        ]
    )[0]
    assert query == [*expected, ENDOFTEXT_ID]
    document = tiny_encoder.tokenize(["Explain gravity"], kind="document")[0]
    assert document == [*tiny_encoder.content_ids(["Explain gravity"])[0], ENDOFTEXT_ID]


def test_alone_equals_inside_padded_batch(tiny_encoder):
    batch = tiny_encoder.encode([*TEXTS, "x " * 300]).vectors
    for index, text in enumerate(TEXTS):
        alone = tiny_encoder.encode([text]).vectors[0]
        np.testing.assert_allclose(alone, batch[index], atol=1e-5)


def test_left_and_right_padding_agree_with_mask_pooling(tiny_encoder):
    inputs = tiny_encoder.tokenize(TEXTS)
    width = max(map(len, inputs))
    results = []
    for side in ("left", "right"):
        ids = torch.full((len(inputs), width), ENDOFTEXT_ID)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, sequence in enumerate(inputs):
            span = slice(width - len(sequence), width) if side == "left" else slice(0, len(sequence))
            ids[row, span] = torch.tensor(sequence)
            mask[row, span] = 1
        with torch.inference_mode():
            hidden = tiny_encoder.model(input_ids=ids, attention_mask=mask).last_hidden_state
        results.append(pool(hidden, mask, "last_token").numpy())
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)


def test_query_differs_from_document(tiny_encoder):
    query = tiny_encoder.encode(["Explain gravity"], kind="query").vectors[0]
    document = tiny_encoder.encode(["Explain gravity"], kind="document").vectors[0]
    assert float(query @ document) < 0.999
    custom = tiny_encoder.encode(["Explain gravity"], kind="query", instruction="Find physics text").vectors[
        0
    ]
    assert float(custom @ query) < 0.999


def test_mrl_truncate_then_normalise(tiny_encoder):
    full = tiny_encoder.encode(TEXTS, normalize=False).vectors
    for k in (32, 48, 64):
        cut = tiny_encoder.encode(TEXTS, dimensions=k).vectors
        expected = full[:, :k] / np.linalg.norm(full[:, :k], axis=1, keepdims=True)
        assert cut.shape == (len(TEXTS), k)
        np.testing.assert_allclose(cut, expected, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("dimensions", [0, 31, 65, -1])
def test_mrl_out_of_range_refused(tiny_encoder, dimensions):
    with pytest.raises(UnsupportedDimensionsError, match=r"32\.\.64"):
        tiny_encoder.encode(["x"], dimensions=dimensions)


def test_matches_independent_numpy_reference(tiny_encoder, tiny_model_dir):
    """float32 torch vs float64 numpy: agreement to 1e-4 on normalised vectors."""
    reference = ReferenceQwen3(tiny_model_dir)
    inputs = tiny_encoder.tokenize(TEXTS, kind="query")
    ours = tiny_encoder.encode(TEXTS, kind="query").vectors
    for row, ids in enumerate(inputs):
        expected = reference.last_token_vector(ids)
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(ours[row], expected, atol=1e-4)


def test_long_input_refused_by_default_and_truncated_on_request(tiny_encoder):
    short = dataclasses.replace(tiny_encoder.spec, max_tokens=16)
    original = tiny_encoder.spec
    tiny_encoder.spec = short
    try:
        text = "word " * 40
        with pytest.raises(InputTooLongError) as caught:
            tiny_encoder.encode(["ok", text])
        assert caught.value.index == 1 and caught.value.limit == 16
        expected_count = len(tiny_encoder.content_ids([text])[0]) + 1
        assert caught.value.token_count == expected_count
        assert f"{expected_count} tokens" in str(caught.value) and "limit of 16" in str(caught.value)
        ids = tiny_encoder.tokenize([text], truncate=True)[0]
        assert len(ids) == 16 and ids[-1] == ENDOFTEXT_ID and ids[-2] != ENDOFTEXT_ID
        assert tiny_encoder.encode([text], truncate=True).token_counts == (16,)
    finally:
        tiny_encoder.spec = original


def test_long_input_within_limit_uses_token_budget(tiny_encoder):
    """A 4k-token input beside short ones: batched by the padded-token budget, results unchanged."""
    long_text = "token " * 4000
    together = tiny_encoder.encode([long_text, *TEXTS]).vectors
    alone = tiny_encoder.encode(TEXTS).vectors
    np.testing.assert_allclose(together[1:], alone, atol=1e-5)


def test_empty_and_non_string_input_refused(tiny_encoder):
    with pytest.raises(InvalidInputError, match="input 1 is empty"):
        tiny_encoder.encode(["ok", "  "])
    with pytest.raises(InvalidInputError, match="not a string"):
        tiny_encoder.encode(["ok", 3])


def test_token_id_input_framed_and_validated(tiny_encoder):
    ids = tiny_encoder.content_ids(["hello world"])[0]
    framed = tiny_encoder.frame_token_ids([ids])
    assert framed == [[*ids, ENDOFTEXT_ID]]
    np.testing.assert_allclose(
        tiny_encoder.embed_framed(framed).vectors,
        tiny_encoder.encode(["hello world"]).vectors,
        atol=1e-6,
    )
    with pytest.raises(InvalidInputError, match="outside the vocabulary"):
        tiny_encoder.frame_token_ids([[1, 10**9]])


MODEL_CARD_QUERIES = ["What is the capital of China?", "Explain gravity"]
MODEL_CARD_DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical "
    "objects and is responsible for the movement of planets around the sun.",
]
MODEL_CARD_SCORES = [
    [0.7645568251609802, 0.14142508804798126],
    [0.13549736142158508, 0.5999549627304077],
]


def test_model_card_scores_with_real_weights(settings):
    from embedhub.models.backends import load_resolved
    from embedhub.models.loading import locate
    from embedhub.models.registry import QWEN3_EMBEDDING_0_6B

    found = locate(QWEN3_EMBEDDING_0_6B, settings)
    if found is None:
        pytest.skip(
            "Qwen3-Embedding-0.6B weights are not on this machine (no hub here); put them in a folder "
            "listed in EMBEDHUB_MODEL_DIRS to run this check"
        )
    encoder = load_resolved(found, settings)
    queries = encoder.encode(MODEL_CARD_QUERIES, kind="query").vectors
    documents = encoder.encode(MODEL_CARD_DOCUMENTS, kind="document").vectors
    np.testing.assert_allclose(queries @ documents.T, MODEL_CARD_SCORES, atol=1e-3)


def test_matryoshka_sizes_come_from_the_spec():
    """One list of offered MRL sizes (the model card and the MRL evaluation both use it)."""
    from embedhub.eval.tasks.mrl import mrl_dims
    from embedhub.models.registry import ALL_MINILM_L6_V2, QWEN3_EMBEDDING_0_6B, QWEN3_EMBEDDING_4B

    assert QWEN3_EMBEDDING_0_6B.mrl_sizes == [32, 64, 128, 256, 512, 1024]
    assert QWEN3_EMBEDDING_4B.mrl_sizes == [32, 64, 128, 256, 512, 1024, 2048, 2560]
    assert ALL_MINILM_L6_V2.mrl_sizes == [384]
    assert mrl_dims(1024, 32) == QWEN3_EMBEDDING_0_6B.mrl_sizes
