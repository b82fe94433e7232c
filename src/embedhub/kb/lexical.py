"""The one text analyzer behind every BM25 index embedhub builds: the knowledge base's full-text
index, its queries, its highlighting and the evaluation's lexical baseline.

Why one: a lexical score is only as good as the terms it counts, and an evaluation that
tokenises differently from the product measures something users never get.

Text is NFKC-normalised and lower-cased, then handled per script:
- Han runs are segmented by jieba in search mode (a compound and the shorter words inside it).
  A word jieba does not know (a name it guessed with its HMM) also gives its single characters,
  so a query that writes the name differently still shares terms with it.
- Words of spaced scripts (Latin, Cyrillic, Greek, ...) lose stop words (for English NLTK's list,
  as `bm25s` ships it) and single characters, and are stemmed with a Snowball stemmer (PyStemmer,
  the stemmer `bm25s` uses): `studies`/`study` -> `studi`. Dropping single characters costs the
  `6` of `IL-6` and the `D` of `vitamin D` (the dense side still sees them); on SciFact train it
  is worth +0.0023 nDCG@10, as much as the longer stop list, and keeping single digits lost it.
- Identifiers (`parse_url`, `readFile`) are kept whole and also split into their parts, so code
  and prose about it meet.

The language of the stemmer and the stop words is a choice per collection (English by default:
a Snowball stemmer leaves words of other scripts unchanged).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from embedhub.errors import InvalidInputError

#: bumped whenever the same text gets different terms: collections indexed with another version
#: are re-analysed from their stored text when opened (embedhub.kb.collection)
ANALYZER_VERSION = 2
#: how often a chunk's heading path is counted in its terms (see `chunk_terms`)
HEADING_REPEAT = 2

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
#: a Han run, or a word of a spaced script (letters and digits, `_` joins identifier parts,
#: an apostrophe inside a word is kept: don't, o'neill)
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+(?:['’][^\W_{_CJK}]+)*", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_CAMEL_JOIN = re.compile(r"[a-z][A-Z]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

CHINESE_STOPWORDS = frozenset(
    (
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "也",
        "都",
        "而",
        "就",
        "之",
        "其",
        "这",
        "那",
        "有",
        "为",
    )
)

_jieba_lock = threading.Lock()
_jieba = None


def _segmenter():
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


@functools.lru_cache(maxsize=16)
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(language)


@functools.lru_cache(maxsize=16)
def _stopwords(language: str) -> frozenset[str]:
    import bm25s.stopwords

    if language == "english":  # NLTK's list: measured above Lucene's short one on SciFact
        return frozenset(bm25s.stopwords.STOPWORDS_EN_PLUS)
    return frozenset(getattr(bm25s.stopwords, f"STOPWORDS_{language.upper()}", ()))


def stemmer_languages() -> list[str]:
    import Stemmer

    return sorted(Stemmer.algorithms())


@dataclass(frozen=True)
class Analyzer:
    """Text -> index terms. `language` picks the Snowball stemmer and stop words for spaced-script
    words ("none": neither); Chinese is always segmented by jieba."""

    language: str = "english"
    han_characters: bool = True

    def __post_init__(self) -> None:
        if self.language != "none" and self.language not in stemmer_languages():
            raise InvalidInputError(
                f"unknown lexical language {self.language!r}; choose one of: none, "
                + ", ".join(stemmer_languages())
            )

    def terms(self, text: str) -> list[str]:
        """Index terms of a text, in order (a term repeats as often as it occurs)."""
        out: list[str] = []
        normalized = unicodedata.normalize("NFKC", text)
        for match in _TOKEN.finditer(normalized):
            token = match.group()
            if _CJK_RUN.match(token):
                out.extend(self._han(token))
            else:
                out.extend(self._words(token))
        return out

    def _han(self, run: str) -> Iterable[str]:
        jieba = _segmenter()
        for word in jieba.cut_for_search(run):
            if not word.strip() or word in CHINESE_STOPWORDS:
                continue
            yield word
            if self.han_characters and len(word) > 1 and not jieba.dt.FREQ.get(word):
                yield from (character for character in word if character not in CHINESE_STOPWORDS)

    def _words(self, token: str) -> Iterable[str]:
        token = token.replace("’", "'")
        lowered = token.lower().strip("_")
        if not lowered:
            return []
        words = [lowered]
        if "_" in lowered or _CAMEL_JOIN.search(token):  # an identifier: whole, then its parts
            parts = [part for piece in token.split("_") for part in _CAMEL.findall(piece)]
            words.extend(part.lower() for part in parts if len(parts) > 1)
        return [self._normal(word) for word in words if len(word) > 1 and not self._stop(word)]

    def _stop(self, word: str) -> bool:
        return self.language != "none" and word in _stopwords(self.language)

    def _normal(self, word: str) -> str:
        if self.language == "none" or "_" in word:
            return word
        return _stemmer(self.language).stemWord(word)

    def marks(self, text: str, query: str) -> list[tuple[int, int]]:
        """Character spans of `text` that match a term of `query` (for highlighting): a word of a
        spaced script when one of its terms is a query term (so `studies` marks for `study`),
        a Chinese query word of two or more characters wherever it occurs (a lone character
        would mark inside every other word)."""
        wanted = {term for term in self.terms(query) if len(term) > 1}
        han = sorted((term for term in wanted if _CJK_RUN.match(term)), key=len, reverse=True)
        han_pattern = re.compile("|".join(map(re.escape, han))) if han else None
        spans: list[tuple[int, int]] = []
        for match in _TOKEN.finditer(text):
            token = match.group()
            if _CJK_RUN.match(token):
                if han_pattern is not None:
                    offset = match.start()
                    spans.extend((offset + m.start(), offset + m.end()) for m in han_pattern.finditer(token))
            elif wanted.intersection(self._words(unicodedata.normalize("NFKC", token))):
                spans.append(match.span())
        return spans


DEFAULT_ANALYZER = Analyzer()


def analyze(text: str, analyzer: Analyzer = DEFAULT_ANALYZER) -> list[str]:
    """Index terms of a text with the default analyzer (or the one given)."""
    return analyzer.terms(text)


def chunk_terms(text: str, heading_path: Sequence[str], analyzer: Analyzer = DEFAULT_ANALYZER) -> str:
    """The terms stored for one chunk: its heading path counted `HEADING_REPEAT` times, then its
    text. A title says what the whole section is about, so its words weigh more than one mention
    in the body; repeating them inside the one field is the boost that measured best (a separate
    title field, scored and added, helped CMRC2018 but cost SciFact 0.005 nDCG@10)."""
    heading = analyzer.terms(" ".join(heading_path)) if heading_path else []
    return " ".join(heading * HEADING_REPEAT + analyzer.terms(text))
