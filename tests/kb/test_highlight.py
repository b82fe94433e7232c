"""Snippets: whole query terms marked (never fragments inside words or lone CJK characters), the
best sentences shown whole, cuts only between words, ellipses exactly where text was left out."""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

import pytest

from embedhub.errors import InvalidInputError
from embedhub.eval.lexical import BM25Index
from embedhub.kb.chunking import ChunkingOptions, chunk_document
from embedhub.kb.loaders import load_file
from embedhub.kb.snippets import DEFAULT_WIDTH, ELLIPSIS, highlight, normalize_whitespace, sentences
from tests.conftest import shared_data


def marked(snippet: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", snippet)


def test_latin_terms_only_at_word_boundaries():
    snippet = highlight("The start of art history: artists restart; ART.", "art")
    assert marked(snippet) == ["art", "ART"]
    assert marked(highlight("Cafés and café culture", "café")) == ["Cafés", "café"]  # one stem
    assert marked(highlight("Python编程 and pythonic code", "python")) == ["Python", "pythonic"]  # one stem


def test_chinese_words_of_two_or_more_characters():
    snippet = highlight("北京大学位于北京。北方很冷。", "北京大学")
    assert marked(snippet)[0] == "北京大学" and "北京" in marked(snippet)
    assert "北" not in marked(snippet)
    assert marked(highlight("我有一只猫，它很可爱。", "我的猫")) == []  # single characters are not marked


def test_unmarked_snippet_is_bounded_and_escaped():
    snippet = highlight("<p>" + "x " * 400, "a")
    assert snippet.startswith("&lt;p&gt;") and snippet.endswith("…") and "<mark>" not in snippet


# --- sentence snippets (kb/snippets.py) --------------------------------------------------------

_SPACED_WORD = re.compile(r"[^\W\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*$", re.MULTILINE)


def visible(snippet: str) -> str:
    return html.unescape(re.sub(r"</?mark>", "", snippet))


def pieces(snippet: str) -> list[str]:
    """The snippet's shown text between its ellipses, whitespace runs as one space."""
    return [" ".join(piece.split()) for piece in visible(snippet).split(ELLIPSIS) if piece.strip()]


def assert_whole_words(source: str, snippet: str) -> None:
    """Every piece of the snippet is text of the source that starts and ends between words (for a
    spaced script) and between graphemes. A table's `|---|` separator row is never shown, so a
    header row and the row after it read as adjacent."""
    source = " ".join(_TABLE_SEPARATOR.sub("", source).split())
    for piece in pieces(snippet):
        position = source.find(piece)
        assert position >= 0, f"{piece!r} is not text of the source"
        for edge in (position, position + len(piece)):
            if 0 < edge < len(source):
                left, right = source[edge - 1], source[edge]
                assert not (_SPACED_WORD.match(left) and _SPACED_WORD.match(right)), (
                    f"{piece!r} is cut inside a word at {source[max(0, edge - 15) : edge + 15]!r}"
                )
                assert not unicodedata.category(right).startswith("M"), f"{piece!r} splits a grapheme"


def assert_omissions_marked(source: str, snippet: str) -> None:
    """An ellipsis stands exactly where text of the source was left out, and nowhere else."""
    source = " ".join(source.split())
    shown = visible(snippet).strip()
    assert shown.startswith(ELLIPSIS) == (not source.startswith(pieces(snippet)[0]))
    assert shown.endswith(ELLIPSIS) == (not source.endswith(pieces(snippet)[-1]))
    cursor = 0
    for piece in pieces(snippet):
        position = source.find(piece, cursor)
        assert position >= 0
        if cursor:
            assert source[cursor:position].strip(), f"an ellipsis before {piece!r} but nothing was left out"
        cursor = position + len(piece)


def sentence_text(count: int, topic: str = "weather") -> list[str]:
    return [f"Sentence {number} says something ordinary about the {topic} today." for number in range(count)]


def test_english_snippets_never_start_or_end_inside_a_word():
    text = (
        "The Solar Panels Handbook is the guide for this house. It covers mounting, wiring and upkeep. "
        "An inverter changes direct current from the panels into the alternating current of the house. "
        "Project B replaced the old inverter in spring. " + " ".join(sentence_text(8))
    )
    for query in ("solar panels handbook", "direct current", "project"):
        snippet = highlight(text, query)
        assert_whole_words(text, snippet)
        assert_omissions_marked(text, snippet)
        assert len(visible(snippet)) <= DEFAULT_WIDTH
    snippet = highlight(text, "direct current")
    assert "An inverter changes <mark>direct</mark> <mark>current</mark>" in snippet  # the whole sentence
    assert "…anges" not in snippet and "…olar" not in snippet and "…oject" not in snippet


def test_chinese_snippet_shows_whole_sentences_between_characters():
    text = (
        "北方的冬天很冷，风也很大。" * 12
        + "北京大学位于北京市海淀区，是一所综合性大学。"
        + "南方的夏天很热，雨水很多。" * 20
    )
    snippet = highlight(text, "北京大学")
    assert "<mark>北京大学</mark>位于<mark>北京</mark>市海淀区，是一所综合性<mark>大学</mark>。" in snippet
    assert visible(snippet).startswith("…北") and visible(snippet).endswith("。…")  # no spaces beside CJK
    assert_whole_words(text, snippet)
    assert_omissions_marked(text, snippet)
    assert len(visible(snippet)) <= DEFAULT_WIDTH


def test_mixed_chinese_and_english_sentences():
    text = "数据分析需要耐心。" * 10 + "We use Python for data work. Python编程很有趣！" + "天气不错。" * 30
    snippet = highlight(text, "python 编程")
    assert "We use <mark>Python</mark> for data work. <mark>Python</mark><mark>编程</mark>很有趣！" in snippet
    assert_whole_words(text, snippet)
    assert_omissions_marked(text, snippet)


def test_no_lexical_match_shows_the_first_sentences():
    sentences = sentence_text(20)
    text = " ".join(sentences)
    snippet = highlight(text, "quantum chromodynamics")  # a dense-only hit
    assert "<mark>" not in snippet and snippet.startswith(sentences[0]) and snippet.endswith(" …")
    assert visible(snippet)[: -len(" …")].endswith(".")  # the last sentence shown is whole
    assert_omissions_marked(text, snippet)


def test_a_sentence_wider_than_the_snippet_is_cut_between_words_around_its_terms():
    words = [f"word{number}" for number in range(400)]
    text = " ".join([*words[:200], "photosynthesis", *words[200:]]) + "."
    snippet = highlight(text, "photosynthesis")
    shown = visible(snippet)
    assert shown.startswith("… word") and shown.endswith(" …") and len(shown) <= DEFAULT_WIDTH
    assert marked(snippet) == ["photosynthesis"]
    before, after = shown.split("photosynthesis")
    assert 30 < len(before) < len(after)  # some text before the term, more after it
    assert_whole_words(text, snippet)
    assert_omissions_marked(text, snippet)


def test_html_special_characters_are_escaped():
    text = "<script>alert('x')</script> & Tom's \"quotes\" mention the inverter. Fine print follows here."
    snippet = highlight(text, "inverter")
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet and "&amp;" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    assert marked(snippet) == ["inverter"]


def test_ellipses_stand_exactly_where_sentences_were_left_out():
    sentences = sentence_text(12)
    sentences[2] = "The harbour crane lifts containers."
    sentences[9] = "A second harbour holds fishing boats."
    text = " ".join(sentences)
    snippet = highlight(text, "harbour", width=200)
    shown = visible(snippet)
    assert "The <mark>harbour</mark> crane" in snippet and "A second <mark>harbour</mark>" in snippet
    assert shown.count(ELLIPSIS) == 3, shown  # before, between the two and after
    assert_omissions_marked(text, snippet)
    assert len(shown) <= 200
    neighbours = highlight(" ".join(sentences[:4]), "harbour crane")
    assert ELLIPSIS not in neighbours  # all of a short chunk, nothing left out


def test_hard_wrapped_lines_are_one_sentence_and_breaks_between_sentences_are_kept():
    wrapped = "Alice was getting very tired of sitting by her sister on the\nbank, and of nothing to do."
    text = wrapped + "\nSo she was considering in her own mind."
    found = [text_of(text, sentence) for sentence in sentences(normalize_whitespace(text))]
    assert found == [
        wrapped,
        "So she was considering in her own mind.",
    ]
    snippet = highlight(text, "sister")
    assert "on the bank" in snippet and "to do.\nSo she" in snippet  # a wrap is a space, a break a line


def text_of(text: str, sentence) -> str:
    return normalize_whitespace(text)[sentence.start : sentence.end]


def test_sentence_splitting_keeps_abbreviations_initials_and_list_numbers():
    text = "Dr. J. Smith wrote it, e.g. in 2019. Then it ended!\n1. The first step.\n"
    text += "第一句。第二句！“第三句？”最后"
    assert [text_of(text, sentence) for sentence in sentences(text)] == [
        "Dr. J. Smith wrote it, e.g. in 2019.",
        "Then it ended!",
        "1. The first step.",
        "第一句。",
        "第二句！",
        "“第三句？”",
        "最后",
    ]


def test_table_rows_are_shown_whole_and_the_separator_row_never():
    rows = [f"| item {number} | plain value {number} | ordinary note |" for number in range(30)]
    rows[17] = "| item 17 | the turbine value | ordinary note |"
    text = "| Item | Value | Note |\n|---|---|---|\n" + "\n".join(rows)
    snippet = highlight(text, "turbine")
    assert "<mark>turbine</mark>" in snippet and "---" not in snippet
    for line in visible(snippet).split("\n"):
        line = line.strip(" " + ELLIPSIS)
        assert line.startswith("|") and line.endswith("|"), line
    wide = "| " + " | ".join(f"cell {number} text" for number in range(60)) + " | the turbine | end |"
    snippet = highlight(wide, "turbine", width=120)
    row = visible(snippet).strip(" " + ELLIPSIS)
    assert row.startswith("|") and row.endswith("|") and "turbine" in row and len(visible(snippet)) <= 120


def test_graphemes_and_marked_words_are_never_split():
    combining = "字\U000e0100"  # a Han character with its variation selector: one grapheme
    text = combining * 300 + "北京大学" + combining * 300
    snippet = highlight(text, "北京大学")
    shown = visible(snippet).strip(ELLIPSIS)
    assert shown.startswith("字") and shown.endswith("\U000e0100") and "<mark>北京大学</mark>" in snippet
    assert len(visible(snippet)) <= DEFAULT_WIDTH
    accented = " ".join(["cafe\u0301"] * 200)  # a combining accent after each e
    for piece in pieces(highlight(accented, "nothing")):
        assert piece.startswith("c") and piece.endswith("\u0301")


def test_a_snippet_too_narrow_to_hold_a_word_is_refused():
    with pytest.raises(InvalidInputError, match="at least 16"):
        highlight("Some text.", "text", width=5)
    assert highlight("   ", "text") == ""


def _real_chunks(folder: Path) -> list[tuple[str, str]]:
    """(chunk text, heading) pairs of the documents in a folder, chunked as the knowledge base does
    (tokens estimated: a quarter of the characters, one per Han character)."""

    def count_tokens(texts):
        return [max(1, len(re.findall(r"[\u4e00-\u9fff]", text)) + len(text) // 4) for text in texts]

    pairs = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".txt", ".md") or "license" in path.name.lower():
            continue
        for chunk in chunk_document(load_file(path), count_tokens, ChunkingOptions()):
            pairs.append((chunk.text, chunk.heading_path[-1] if chunk.heading_path else ""))
    return pairs


@pytest.mark.parametrize("folder", ["long-docs-en", "long-docs-zh"])
def test_real_documents_get_snippets_of_whole_words(folder):
    chunks = _real_chunks(shared_data(folder))
    headings = list(dict.fromkeys(heading for _, heading in chunks if heading))[:: max(1, len(chunks) // 400)]
    index = BM25Index([text for text, _ in chunks])
    checked = 0
    for query in headings[:20]:
        for position, _ in index.search(query, depth=3):
            text = chunks[position][0]
            snippet = highlight(text, query)
            assert_whole_words(text, snippet)
            assert len(visible(snippet)) <= DEFAULT_WIDTH
            assert re.sub(r"</?mark>", "", snippet).count("<") == 0
            checked += 1
    for text, _ in chunks[::25]:  # dense-only hits: the chunk's first sentences
        snippet = highlight(text, "zzzz qqqq")
        assert_whole_words(text, snippet)
        assert " ".join(_TABLE_SEPARATOR.sub("", text).split()).startswith(pieces(snippet)[0])
        checked += 1
    assert checked > 40
