"""Structure-first chunking, packed to a token budget measured with the collection model's own
tokenizer.

1. Sections: consecutive blocks under the same heading path on the same page; a standalone block
   (a function, a class) is a section of its own. Chunks never cross a section, so every chunk
   has one heading path and, for PDFs, one page.
2. Units: a block that fits the budget is one unit; a larger one is split into sentences (or
   lines), and a sentence still too large is cut into pieces that fit.
3. Packing: units fill a chunk up to the budget; the next chunk of the same section starts with
   the trailing units of the previous one that fit in the overlap budget.
Every chunk keeps its character span in the extracted text, its pages and its heading path.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from embedhub.kb.loaders.base import ExtractedDocument

TokenCounter = Callable[[Sequence[str]], list[int]]
_SENTENCE = re.compile(r"[^\n.!?。！？；;]*(?:[.!?。！？；;]+[\"'”’)\]]*|\n+|$)")


@dataclass(frozen=True)
class ChunkingOptions:
    max_tokens: int = 400
    overlap_tokens: int = 48

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("chunk max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("chunk overlap must be between 0 and half the chunk size")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None
    heading_path: tuple[str, ...]
    tokens: int

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]

    def embedding_text(self) -> str:
        """What is embedded: the heading path gives a chunk its context, the text its content."""
        if self.heading_path and not self.text.startswith(self.heading_path[-1]):
            return " > ".join(self.heading_path) + "\n" + self.text
        return self.text


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    page: int | None


def chunk_document(
    document: ExtractedDocument, count_tokens: TokenCounter, options: ChunkingOptions
) -> list[Chunk]:
    text = document.text
    sections: list[tuple[tuple[str, ...], list[_Unit]]] = []
    previous_key = None
    pieces: list[tuple[int, int, int | None]] = []  # candidate units before measuring
    owners: list[int] = []
    for block, (start, end) in zip(document.blocks, document.spans, strict=True):
        key = (block.heading_path, block.page)
        if block.standalone or key != previous_key or (sections and sections[-1][0] is None):
            sections.append((block.heading_path, []))
        previous_key = None if block.standalone else key
        pieces.append((start, end, block.page))
        owners.append(len(sections) - 1)
    counts = count_tokens([text[start:end] for start, end, _ in pieces])
    for (start, end, page), count, owner in zip(pieces, counts, owners, strict=True):
        units = sections[owner][1]
        if count <= options.max_tokens:
            units.append(_Unit(start, end, page))
        else:
            units.extend(_split_block(text, start, end, page, count_tokens, options.max_tokens))
    chunks: list[Chunk] = []
    for heading_path, units in sections:
        chunks.extend(_pack(text, heading_path, units, count_tokens, options, len(chunks)))
    return chunks


def _split_block(text, start, end, page, count_tokens, budget) -> list[_Unit]:
    sentences = []
    for match in _SENTENCE.finditer(text, start, end):
        if match.end() > match.start() and text[match.start() : match.end()].strip():
            sentences.append((match.start(), match.end()))
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[_Unit] = []
    for (s, e), count in zip(sentences, counts, strict=True):
        if count <= budget:
            units.append(_Unit(s, e, page))
        else:
            units.extend(_Unit(a, b, page) for a, b in _cut(text, s, e, count, count_tokens, budget))
    return units


def _cut(text, start, end, count, count_tokens, budget) -> list[tuple[int, int]]:
    """Cut a span with no sentence boundary into pieces that fit, preferring whitespace."""
    pieces = math.ceil(count / (budget * 0.9))
    size = math.ceil((end - start) / pieces)
    spans = []
    position = start
    while position < end:
        stop = min(end, position + size)
        if stop < end:
            space = text.rfind(" ", position + size // 2, stop)
            stop = space + 1 if space > position else stop
        spans.append((position, stop))
        position = stop
    counts = count_tokens([text[a:b] for a, b in spans])
    result = []
    for (a, b), piece_count in zip(spans, counts, strict=True):
        if piece_count > budget and b - a > 1:
            result.extend(_cut(text, a, b, piece_count, count_tokens, budget))
        else:
            result.append((a, b))
    return result


def _pack(text, heading_path, units, count_tokens, options, first_index) -> list[Chunk]:
    if not units:
        return []
    sizes = count_tokens([text[u.start : u.end] for u in units])
    chunks: list[Chunk] = []
    begin = 0
    while begin < len(units):
        total = 0
        stop = begin
        while stop < len(units) and (stop == begin or total + sizes[stop] <= options.max_tokens):
            total += sizes[stop]
            stop += 1
        chosen = units[begin:stop]
        pages = [u.page for u in chosen if u.page is not None]
        start, end = chosen[0].start, chosen[-1].end
        body = text[start:end]
        chunks.append(
            Chunk(
                index=first_index + len(chunks),
                text=body,
                char_start=start,
                char_end=end,
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                heading_path=heading_path,
                tokens=total,
            )
        )
        if stop >= len(units):
            break
        # overlap: step back over trailing units that fit in the overlap budget
        back, carried = stop, 0
        while back - 1 > begin and carried + sizes[back - 1] <= options.overlap_tokens:
            back -= 1
            carried += sizes[back]
        begin = back
    return chunks
