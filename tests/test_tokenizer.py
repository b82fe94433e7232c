"""The offline Qwen tokenizer is exact: llama.cpp's reference cases and tiktoken on the same ranks."""

from __future__ import annotations

import json
import random

import pytest

from embedhub.models.qwen_tokenizer import (
    ENDOFTEXT_ID,
    QWEN2_PATTERN,
    VOCAB_SIZE,
    load_qwen_tokenizer,
    tiktoken_path,
)
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def tokenizer(settings):
    return load_qwen_tokenizer(settings.cache_dir)


def test_llama_cpp_reference_cases(tokenizer):
    cases = json.loads(shared_data("qwen-tokenizer-cases", "cases.json").read_text())
    assert len(cases) == 43
    mismatches = [
        (case["text"], tokenizer.encode(case["text"], add_special_tokens=False).ids, case["ids"])
        for case in cases
        if tokenizer.encode(case["text"], add_special_tokens=False).ids != case["ids"]
    ]
    assert mismatches == []


def test_matches_tiktoken_on_random_multilingual_text(tokenizer):
    """tiktoken applies the same ranks with its own BPE implementation: an independent reference."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    reference = tiktoken.Encoding(
        "qwen",
        pat_str=QWEN2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(tiktoken_path())),
        special_tokens={},
    )
    alphabet = (
        list("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789 .,;:!?'\"()[]{}\n\t-_")
        + list("中文的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会")
        + list("äöüßéèçñ привет мир ελληνικά עברית العربية 한국어 日本語です 🙂🚀")
    )
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        import unicodedata

        text = unicodedata.normalize("NFC", text)
        assert tokenizer.encode(text, add_special_tokens=False).ids == reference.encode_ordinary(text), text


def test_vocabulary_and_endoftext(tokenizer):
    assert tokenizer.get_vocab_size() == VOCAB_SIZE == 151669
    assert tokenizer.token_to_id("<|endoftext|>") == ENDOFTEXT_ID == 151643
    assert tokenizer.token_to_id("<|im_end|>") == 151645
    assert tokenizer.encode("hello").ids[-1] == ENDOFTEXT_ID


def test_cache_round_trip(settings, tokenizer):
    again = load_qwen_tokenizer(settings.cache_dir)
    assert again.encode("缓存 cache").ids == tokenizer.encode("缓存 cache").ids
    assert list(settings.cache_dir.glob("qwen-tokenizer-*.json"))
