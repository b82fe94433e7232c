"""Snippet highlighting marks whole query terms, never fragments inside words or lone CJK characters."""

from __future__ import annotations

import re

from embedhub.kb.snippets import highlight


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
