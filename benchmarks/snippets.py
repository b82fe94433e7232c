"""How often a search result's snippet starts or ends inside a word: the fixed 280-character
window embedhub used before kb/snippets.py against the sentence snippets of kb/snippets.py.

The documents of ../shared/data/long-docs-en and long-docs-zh are loaded and chunked as the
knowledge base does (kb/loaders, kb/chunking; tokens counted as characters / 4 for spaced text
and 1 per Han character, an estimate: the chunk sizes only need to be realistic). The queries are
section headings of those documents (`--queries` per language, spread over the documents); each
query's `--depth` best chunks by BM25 (the knowledge base's analyzer) get a snippet from each
method. A snippet's visible text (tags and entities removed) is split at its ellipses; a piece
starts (ends) mid-word when the chunk text has a letter or digit of a spaced script on both sides
of its start (end). Positions are checked against the chunk, what the snippet is made from.

The time per snippet is measured in the same run for both methods (run it alone on the machine).

Usage::

    PYTHONPATH=src python benchmarks/snippets.py --queries 20 --depth 5
"""

from __future__ import annotations

import argparse
import html
import re
import time
from pathlib import Path

from embedhub.eval.lexical import BM25Index
from embedhub.kb.chunking import ChunkingOptions, chunk_document
from embedhub.kb.lexical import DEFAULT_ANALYZER, Analyzer
from embedhub.kb.loaders import load_file
from embedhub.kb.snippets import highlight

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGUAGES = {"en": DATA / "long-docs-en", "zh": DATA / "long-docs-zh"}
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SPACED_WORD = re.compile(r"[^\W\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff]")


def window_highlight(text: str, query: str, width: int = 280, analyzer: Analyzer = DEFAULT_ANALYZER) -> str:
    """The snippet embedhub made before kb/snippets.py (kb/search.py `highlight`, kept verbatim
    for this comparison): a fixed window around the densest run of query terms."""
    spans = analyzer.marks(text, query)
    if not spans:
        return html.escape(text[:width]) + ("…" if len(text) > width else "")
    best_start, best_count = 0, -1
    for start, _ in spans:
        window_start = max(0, start - width // 4)
        count = sum(1 for other, _ in spans if window_start <= other < window_start + width)
        if count > best_count:
            best_start, best_count = window_start, count
    window_end = best_start + width
    parts, cursor = [], best_start
    for start, end in spans:
        if start < cursor or end > window_end:
            continue
        parts.append(html.escape(text[cursor:start]))
        parts.append("<mark>" + html.escape(text[start:end]) + "</mark>")
        cursor = end
    parts.append(html.escape(text[cursor:window_end]))
    prefix = "…" if best_start > 0 else ""
    suffix = "…" if window_end < len(text) else ""
    return prefix + "".join(parts) + suffix


def count_tokens(texts):
    return [max(1, len(_HAN.findall(text)) + len(_HAN.sub("", text)) // 4) for text in texts]


def visible_pieces(snippet: str) -> list[str]:
    """The snippet's text between its ellipses, whitespace runs as one space."""
    text = html.unescape(re.sub(r"</?mark>", "", snippet))
    return [" ".join(piece.split()) for piece in text.split("…") if piece.strip()]


def mid_word(source: str, piece: str, han_words: set[int]) -> tuple[bool, bool]:
    """(starts mid-word, ends mid-word) of a piece found in the whitespace-normalised source: a
    letter or digit of a spaced script on both sides, or Han characters on both sides that jieba
    puts in one word (`han_words`: the source's jieba word boundaries)."""
    position = source.find(piece)
    if position < 0:
        raise ValueError(f"snippet piece not in its chunk: {piece[:60]!r}")

    def inside(edge: int) -> bool:
        if not 0 < edge < len(source):
            return False
        left, right = source[edge - 1], source[edge]
        if _SPACED_WORD.match(left) and _SPACED_WORD.match(right):
            return True
        return bool(_HAN.match(left) and _HAN.match(right)) and edge not in han_words

    return inside(position), inside(position + len(piece))


def word_boundaries(text: str) -> set[int]:
    import jieba

    boundaries, position = set(), 0
    for word in jieba.cut(text):
        position += len(word)
        boundaries.add(position)
    return boundaries


def headings(documents, count: int) -> list[str]:
    found: list[str] = []
    per_document = [
        list(dict.fromkeys(block.heading_path[-1] for block in document.blocks if block.heading_path))
        for document in documents
    ]
    depth = 0
    while len(found) < count and any(depth < len(items) for items in per_document):
        for items in per_document:
            if depth < len(items) and items[depth] not in found and len(found) < count:
                found.append(items[depth])
        depth += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=20, help="headings used as queries, per language")
    parser.add_argument("--depth", type=int, default=5, help="best chunks per query")
    arguments = parser.parse_args()
    options = ChunkingOptions()
    for language, folder in LANGUAGES.items():
        if not folder.exists():
            print(f"{folder} is absent: {language} skipped")
            continue
        files = sorted(path for path in folder.rglob("*") if path.suffix in (".txt", ".md"))
        documents = [load_file(path) for path in files if "license" not in path.name.lower()]
        documents = [document for document in documents if document.blocks]
        chunks = [
            chunk.text for document in documents for chunk in chunk_document(document, count_tokens, options)
        ]
        queries = headings(documents, arguments.queries)
        index = BM25Index(chunks)
        counts = {
            name: {
                "snippets": 0,
                "start": 0,
                "end": 0,
                "inner": 0,
                "pieces": 0,
                "marked": 0,
                "chars": 0,
                "seconds": 0.0,
            }
            for name in ("window (main)", "sentences")
        }
        for query in queries:
            for chunk_index, _ in index.search(query, depth=arguments.depth):
                source = " ".join(chunks[chunk_index].split())
                han_words = word_boundaries(source)
                for name, method in (("window (main)", window_highlight), ("sentences", highlight)):
                    began = time.perf_counter()
                    snippet = method(chunks[chunk_index], query)
                    tally = counts[name]
                    tally["seconds"] += time.perf_counter() - began
                    pieces = visible_pieces(snippet)
                    tally["snippets"] += 1
                    tally["marked"] += "<mark>" in snippet
                    tally["chars"] += len(html.unescape(re.sub(r"</?mark>", "", snippet)))
                    for number, piece in enumerate(pieces):
                        starts, ends = mid_word(source, piece, han_words)
                        tally["pieces"] += 1
                        tally["start"] += starts and number == 0
                        tally["end"] += ends and number == len(pieces) - 1
                        tally["inner"] += (starts and number > 0) or (ends and number < len(pieces) - 1)
        print(
            f"\n{language}: {len(documents)} documents, {len(chunks)} chunks, {len(queries)} heading queries,"
        )
        print(f"best {arguments.depth} chunks each")
        header = (
            "method",
            "snippets",
            "start mid-word",
            "end mid-word",
            "inner cuts",
            "with <mark>",
            "mean chars",
        )
        print("".join(f"{title:>16}" for title in header))
        for name, tally in counts.items():
            total = max(1, tally["snippets"])
            cells = (
                name,
                tally["snippets"],
                f"{tally['start'] / total:.1%}",
                f"{tally['end'] / total:.1%}",
                tally["inner"],
                f"{tally['marked'] / total:.1%}",
                f"{tally['chars'] / total:.0f}",
                f"{tally['seconds'] * 1000 / total:.2f}",
            )
            print("".join(f"{cell:>16}" for cell in cells))


if __name__ == "__main__":
    main()
