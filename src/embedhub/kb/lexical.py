"""Text analysis for the BM25 index: jieba word segmentation for Chinese, words for everything else.

The store's full-text engine only splits on whitespace; embedhub segments text itself and indexes
the space-joined terms, so Chinese gets real words (jieba's search mode, which also emits the
shorter words inside long compounds) instead of whole sentences as single tokens.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+(?:['’][^\W_]+)?", re.UNICODE)
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_lock = threading.Lock()
_jieba = None

ENGLISH_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "in", "is", "it",
     "its", "of", "on", "or", "that", "the", "their", "this", "to", "was", "were", "will", "with")
)  # fmt: skip
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


def _segmenter():
    global _jieba
    with _lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def analyze(text: str) -> list[str]:
    """Lower-cased terms of a text, Chinese segmented into words, stopwords dropped."""
    normalized = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    for match in _TOKEN.finditer(normalized):
        token = match.group()
        if _CJK_RUN.match(token):
            for word in _segmenter().cut_for_search(token):
                if word.strip() and word not in CHINESE_STOPWORDS:
                    terms.append(word)
        elif token not in ENGLISH_STOPWORDS:
            terms.append(token.replace("’", "'"))
    return terms


def index_text(text: str) -> str:
    """The whitespace-joined form the full-text index stores."""
    return " ".join(analyze(text))
