"""A reranker pair far over the token limit is tokenised only as far as the limit needs, and its
ids are exactly those of the whole pair's tokenisation, cut (models/reranker.py `bounded_text`).

Both reranker families: Qwen3-Reranker (the tiny random one, with the real Qwen byte-level BPE
vocabulary; one pair body holding instruction, query and document) and a BERT cross-encoder
(MiniLM's WordPiece; query and document are two sequences cut `longest_first`). The reference is
the same call with the bound switched off, i.e. what tokenize_pairs did before it existed.
"""

from __future__ import annotations

import pytest

import embedhub.models.reranker as reranker_module
from embedhub.errors import InputTooLargeError, InputTooLongError
from embedhub.models.base import CUT_MARGIN_TOKENS, FIRST_CHARS_PER_TOKEN
from embedhub.models.reranker import load_reranker
from tests.test_bounded_tokenize import texts_of

QUERY = "What is the capital of China?"


@pytest.fixture(scope="module")
def cross_encoder(tiny_cross_encoder_dir, settings):
    return load_reranker(str(tiny_cross_encoder_dir), settings)


@pytest.fixture(params=["qwen3", "cross-encoder"])
def reranker(request, tiny_reranker):
    return tiny_reranker if request.param == "qwen3" else request.getfixturevalue("cross_encoder")


class TokenizerSpy:
    """Stands in for a reranker's tokenizer (and its cutter's) and records the longest text and
    the characters handed over; everything else goes to the real tokenizer."""

    def __init__(self, reranker, monkeypatch) -> None:
        self.longest = 0
        self.characters = 0
        for owner in (reranker, reranker.cutter):
            monkeypatch.setattr(owner, "tokenizer", _Recording(owner.tokenizer, self))


class _Recording:
    def __init__(self, inner, spy: TokenizerSpy) -> None:
        self.inner = inner
        self.spy = spy

    def note(self, item) -> None:
        for text in item if isinstance(item, tuple | list) else (item,):
            self.spy.longest = max(self.spy.longest, len(text))
            self.spy.characters += len(text)

    def encode(self, item, *args, **kwargs):
        self.note(item)
        return self.inner.encode(item, *args, **kwargs)

    def encode_batch(self, items, *args, **kwargs):
        for item in items:
            self.note(item)
        return self.inner.encode_batch(items, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def unbounded(reranker, query, documents, monkeypatch, **options):
    """tokenize_pairs as it was before the bound: every text tokenised whole."""
    with monkeypatch.context() as patch:
        patch.setattr(reranker_module, "bounded_text", lambda tokenizer, text, *limits: (text, None))
        return reranker.tokenize_pairs(query, documents, **options)


def limits_of(reranker) -> tuple[int, ...]:
    """Token limits that leave a Qwen3 pair room after its prompt (about 60 tokens), and a
    cross-encoder's own 128 with an odd and an even room below it."""
    return (80, 137, 400) if reranker.spec.family == "qwen3" else (32, 77, 128)


def test_a_cut_pair_equals_the_whole_pair_cut(reranker, monkeypatch):
    length = 40_000
    texts = texts_of(length)
    names = list(texts)
    documents = [texts[name] for name in names]
    for limit in limits_of(reranker):
        expected = unbounded(reranker, QUERY, documents, monkeypatch, truncate=True, max_tokens=limit)
        pairs = reranker.tokenize_pairs(QUERY, documents, truncate=True, max_tokens=limit)
        for name, got, want in zip(names, pairs, expected, strict=True):
            assert got == want, (name, limit)  # ids, and whether the pair was cut
        assert sum(pair.truncated and len(pair) == limit for pair in pairs) >= len(names) // 2
    for name, document in texts.items():
        whole = len(reranker.tokenizer.encode(document, add_special_tokens=False).ids)
        limit = max(limits_of(reranker))
        if whole < 4 * (limit + CUT_MARGIN_TOKENS):
            continue  # few ids for its characters (runs of spaces, one [UNK] word): read whole
        spy = TokenizerSpy(reranker, monkeypatch)
        reranker.tokenize_pairs(QUERY, [document], truncate=True, max_tokens=limit)
        monkeypatch.undo()
        assert spy.longest < length, f"{name}: the whole text was tokenised"


@pytest.mark.parametrize("query_length", [3_000, 10_000])
def test_a_long_query_is_cut_as_the_whole_pair_would_be(reranker, query_length, monkeypatch):
    """The query runs past the limit too: in Qwen3's body it comes before the document; a
    cross-encoder halves both sides, and with an odd room the side longer in full keeps one more."""
    texts = texts_of(query_length)
    query = texts["english"]
    documents = ["short", texts["chinese"], texts["no-spaces"] * 2, "x" * (query_length // 2), "北京" * 9]
    for limit in limits_of(reranker):
        expected = unbounded(reranker, query, documents, monkeypatch, truncate=True, max_tokens=limit)
        assert reranker.tokenize_pairs(query, documents, truncate=True, max_tokens=limit) == expected


def test_a_30_mb_document_hands_the_tokenizer_a_bounded_prefix(reranker, monkeypatch):
    """The report's case: a 30 MB document sent to /v1/rerank was tokenised whole, then cut."""
    units = {"english": "The capital of China is Beijing. ", "cjk": "北京是中国的首都。", "run": "x"}
    for name, unit in units.items():
        if name == "run" and reranker.spec.family == "cross-encoder":
            continue  # WordPiece: a run without spaces is one [UNK] word, read to its end (models/base.py)
        text = unit * (30_000_000 // len(unit))
        limit = max(limits_of(reranker))
        spy = TokenizerSpy(reranker, monkeypatch)
        short, cut = reranker.tokenize_pairs(QUERY, ["short", text], truncate=True, max_tokens=limit)
        monkeypatch.undo()
        assert cut.truncated and len(cut) == limit and not short.truncated, name
        assert spy.longest <= 16 * (limit + CUT_MARGIN_TOKENS) * FIRST_CHARS_PER_TOKEN + 500, name
        # the same ids as the unbounded tokenisation of a prefix far longer than the one handed over
        reference = unbounded(
            reranker, QUERY, [text[: 4 * spy.longest]], monkeypatch, truncate=True, max_tokens=limit
        )
        assert cut == reference[0], name


def test_a_run_a_cut_cannot_bound_is_refused_past_the_character_limit(reranker, monkeypatch):
    """A cross-encoder's WordPiece reads a run without spaces as one [UNK] word (and a Unigram
    tokenizer must read such a run whole): past the loader's character limit the pair is refused,
    naming the document, instead of a minute of tokenising."""
    monkeypatch.setattr(reranker, "max_tokenised_chars", 1_000_000)
    if reranker.spec.family == "qwen3":
        monkeypatch.setattr(reranker, "cuts_inside_words", False)  # as a Unigram tokenizer would
    with pytest.raises(InputTooLargeError) as refused:
        reranker.tokenize_pairs(
            QUERY, ["short", "x" * 30_000_000], truncate=True, max_tokens=max(limits_of(reranker))
        )
    assert "EMBEDHUB_MAX_INPUT_CHARS" in str(refused.value) and refused.value.limit == 1_000_000
    if reranker.spec.family == "qwen3":
        assert refused.value.index == 1


def test_without_truncation_a_30_mb_document_is_refused_after_a_bounded_count(reranker, monkeypatch):
    limit = max(limits_of(reranker))
    text = "Beijing is the capital of China. " * (30_000_000 // 33)
    spy = TokenizerSpy(reranker, monkeypatch)
    with pytest.raises(InputTooLongError) as refused:
        reranker.tokenize_pairs(QUERY, ["short", text], max_tokens=limit)
    monkeypatch.undo()
    error = refused.value
    assert error.index == 1 and error.limit == limit and error.at_least
    assert limit < error.token_count < 4 * (limit + CUT_MARGIN_TOKENS)
    said = f"input 1 has over {error.token_count} tokens, more than the model's limit of {limit}"
    assert said in str(error)
    assert spy.characters < 1_000_000


def test_a_pair_just_over_the_limit_is_refused_with_its_exact_count(reranker, monkeypatch):
    """A text the first prefix holds whole is counted exactly, as before."""
    limit = max(limits_of(reranker))
    document = "Beijing is the capital of China. " * (limit // 4)  # about 1.7 times the limit
    with pytest.raises(InputTooLongError) as before:
        unbounded(reranker, QUERY, ["short", document], monkeypatch, max_tokens=limit)
    with pytest.raises(InputTooLongError) as now:
        reranker.tokenize_pairs(QUERY, ["short", document], max_tokens=limit)
    assert str(now.value) == str(before.value) and not now.value.at_least
    assert now.value.index == 1 and now.value.token_count > limit


def test_pairs_within_the_limit_are_unchanged(reranker, monkeypatch):
    documents = ["The capital of China is Beijing.", "北京是中国的首都。", "x" * 300]
    assert reranker.tokenize_pairs(QUERY, documents) == unbounded(reranker, QUERY, documents, monkeypatch)
