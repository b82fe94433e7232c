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
Chunks are produced lazily (`iter_chunks`): a section is measured a window at a time, so a huge
single-section text file is never tokenised whole.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from embedhub.kb.loaders.base import BLOCK_SEPARATOR, ExtractedDocument

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
        return embedding_text(self.text, self.heading_path)


def embedding_text(text: str, heading_path: Sequence[str]) -> str:
    """What is embedded and indexed for a chunk: the heading path gives it its context, the text
    its content (a chunk that starts with its own heading does not repeat it)."""
    if heading_path and not text.startswith(heading_path[-1]):
        return " > ".join(heading_path) + "\n" + text
    return text


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    page: int | None


#: characters of one section measured (tokenised) at a time: chunking a 50 MB text file holds the
#: token counts of one window, never of the whole file
WINDOW_CHARS = 64 * 1024


def chunk_document(
    document: ExtractedDocument, count_tokens: TokenCounter, options: ChunkingOptions
) -> list[Chunk]:
    return list(iter_chunks(document, count_tokens, options))


def iter_chunks(
    document: ExtractedDocument, count_tokens: TokenCounter, options: ChunkingOptions
) -> Iterator[Chunk]:
    """The document's chunks in order, produced lazily in bounded memory.

    A section is measured a window (`WINDOW_CHARS`) at a time; packing emits every chunk whose end
    is decided (the next unit did not fit) and carries the undecided tail (plus nothing else) into
    the next window, so the result is exactly what packing the whole section at once gives."""
    packer = _Packer(_TextView(document), count_tokens, options)
    previous_key = None
    for block, (start, end) in zip(document.blocks, document.spans, strict=True):
        key = (block.heading_path, block.page)
        if block.standalone or key != previous_key:
            yield from packer.finish_section()
            packer.heading_path = block.heading_path
        previous_key = None if block.standalone else key
        packer.add_block(block.text, start, end, block.page)
        if packer.pending_chars >= WINDOW_CHARS:
            yield from packer.pack(final=False)
    yield from packer.finish_section()


class _TextView:
    """Slices of the document text by absolute offsets without joining the whole text."""

    def __init__(self, document: ExtractedDocument) -> None:
        self.blocks = document.blocks
        self.spans = document.spans
        self.starts = [start for start, _ in document.spans]

    def slice(self, start: int, end: int) -> str:
        index = max(bisect.bisect_right(self.starts, start) - 1, 0)
        parts: list[str] = []
        position = start
        while position < end and index < len(self.blocks):
            block_start, block_end = self.spans[index]
            if position < block_start:  # inside the separator before this block
                stop = min(end, block_start)
                offset = block_start - len(BLOCK_SEPARATOR)
                parts.append(BLOCK_SEPARATOR[position - offset : stop - offset])
                position = stop
                continue
            if position < block_end:
                stop = min(end, block_end)
                parts.append(self.blocks[index].text[position - block_start : stop - block_start])
                position = stop
            if position >= block_end:
                index += 1
        return "".join(parts)


class _Packer:
    """Measures and packs the units of the current section (see `iter_chunks`)."""

    def __init__(self, view: _TextView, count_tokens: TokenCounter, options: ChunkingOptions) -> None:
        self.view, self.count_tokens, self.options = view, count_tokens, options
        self.heading_path: tuple[str, ...] = ()
        self.blocks: list[tuple[str, int, int, int | None]] = []  # not yet measured
        self.pending_chars = 0
        self.units: list[_Unit] = []  # measured, not yet packed
        self.sizes: list[int] = []
        self.next_index = 0

    def add_block(self, text: str, start: int, end: int, page: int | None) -> None:
        self.blocks.append((text, start, end, page))
        self.pending_chars += end - start

    def finish_section(self) -> Iterator[Chunk]:
        yield from self.pack(final=True)

    def _measure(self) -> None:
        if not self.blocks:
            return
        counts = self.count_tokens([text for text, _, _, _ in self.blocks])
        budget = self.options.max_tokens
        for (text, start, end, page), count in zip(self.blocks, counts, strict=True):
            if count <= budget:
                self.units.append(_Unit(start, end, page))
                self.sizes.append(count)
            else:
                pieces = _split_block(text, start, page, self.count_tokens, budget)
                self.units.extend(pieces)
                self.sizes.extend(self.count_tokens([self.view.slice(u.start, u.end) for u in pieces]))
        self.blocks, self.pending_chars = [], 0

    def pack(self, final: bool) -> Iterator[Chunk]:
        self._measure()
        units, sizes, options = self.units, self.sizes, self.options
        begin = 0
        while begin < len(units):
            total = 0
            stop = begin
            while stop < len(units) and (stop == begin or total + sizes[stop] <= options.max_tokens):
                total += sizes[stop]
                stop += 1
            if stop >= len(units) and not final:
                break  # this chunk may still grow with the next window's units
            chosen = units[begin:stop]
            pages = [u.page for u in chosen if u.page is not None]
            start, end = chosen[0].start, chosen[-1].end
            yield Chunk(
                index=self.next_index,
                text=self.view.slice(start, end),
                char_start=start,
                char_end=end,
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                heading_path=self.heading_path,
                tokens=total,
            )
            self.next_index += 1
            if stop >= len(units):
                begin = stop
                break
            # overlap: step back over trailing units that fit in the overlap budget
            back, carried = stop, 0
            while back - 1 > begin and carried + sizes[back - 1] <= options.overlap_tokens:
                back -= 1
                carried += sizes[back]
            begin = back
        self.units, self.sizes = units[begin:], sizes[begin:]


def _split_block(text, offset, page, count_tokens, budget) -> list[_Unit]:
    """A block over the budget as sentence (or line) units; `text` is the block, `offset` its start."""
    sentences = []
    for match in _SENTENCE.finditer(text):
        if match.end() > match.start() and text[match.start() : match.end()].strip():
            sentences.append((match.start(), match.end()))
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[_Unit] = []
    for (s, e), count in zip(sentences, counts, strict=True):
        if count <= budget:
            units.append(_Unit(offset + s, offset + e, page))
        else:
            pieces = _cut(text, s, e, count, count_tokens, budget)
            units.extend(_Unit(offset + a, offset + b, page) for a, b in pieces)
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
