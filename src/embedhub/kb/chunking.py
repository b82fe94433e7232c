"""Structure-first chunking, packed to a token budget measured with the collection model's own
tokenizer.

1. Sections: consecutive blocks under the same heading path on the same page; a standalone block
   (a function, a class) and a table are sections of their own. Chunks never cross a section, so
   every chunk has one heading path and, for PDFs, one page (a merged sliver, below, aside).
2. No empty chunks. A heading with no body before the next heading (a document title, a heading
   directly followed by a subheading) is not a section: it joins the next section, whose heading
   path then includes it (a title followed by a same-level heading: "Title > Beans"). A section
   with under `MIN_BODY_CHARS` of body is a sliver. Right before a table it is the table's caption
   ("Phase 2", "Table 3: Prices"): the last step of the table's heading path. Otherwise ("See
   above.") it joins its neighbour before it when that one sits under the same parent heading,
   else the one after it under that parent, else whichever neighbour (before first) is not a
   table or a standalone block; with none (a short text between two tables) it stays a chunk. The
   larger section's heading path is the citation; the sliver's own heading line stays in its text.
3. Units: a block that fits the budget is one unit; a larger one is split into sentences (or
   lines), and a sentence still too large is cut into pieces that fit. A chunk never ends with a
   heading unit (it moves to the chunk its body is in) nor is made of heading units alone.
4. Packing: units fill a chunk up to the budget; the next chunk of the same section starts with
   the trailing units of the previous one that fit in the overlap budget.
5. Tables (pipe rows, see `loaders.base.pipe_table`): a table that fits the budget is one chunk;
   a larger one is split by rows, each chunk starting with the header row and separator line, so
   a row is never cited without its column names (no overlap: rows are whole facts). The first
   chunk's text is its span of the document text; a later one's text is the repeated header
   (and a newline) followed by its span, so `len(text) - (char_end - char_start)` is the length of
   that prefix.
Every chunk keeps its character span in the extracted text, its pages and its heading path.
Chunks are produced lazily (`iter_chunks`): a section is measured a window at a time, so a huge
single-section text file is never tokenised whole.

`CHUNKER_VERSION` is recorded per document in the manifest; a change to what chunks are made of
bumps it, so collections chunked before can be told to re-chunk (`kb info`).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from embedhub.kb.loaders.base import BLOCK_SEPARATOR, Block, ExtractedDocument, table_header

#: 1: one chunk per heading-only section, tables as plain text; 2: headings join their body,
#: slivers merge, tables split by rows with their header repeated; 3: ruled PDF tables are table
#: blocks (kb/loaders/pdf_tables.py). What a document is chunked from counts as much as how, so a
#: loader change that alters blocks bumps it too; re-chunking reuses cached vectors of chunks whose
#: text is unchanged, so only the changed chunks are embedded again.
CHUNKER_VERSION = 3
#: a section with less body text than this (characters, stripped) is merged into a neighbour
MIN_BODY_CHARS = 20

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


def chunk_kind(text: str) -> str:
    """ "table" for a chunk whose text is a pipe table (header row first), else "text": what the UI
    and the API tell a table citation by (older collections' tables, plain text, read as text)."""
    return "table" if table_header(text) is not None else "text"


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    page: int | None
    heading: bool = False


@dataclass
class _Section:
    """Consecutive blocks (indices into the document) chunked together under one heading path."""

    blocks: list[int]
    heading_path: tuple[str, ...]
    table: bool = False
    standalone: bool = False
    body_chars: int = 0
    #: the first block the section took in, headings left out of a table's text included
    start: int = 0

    @property
    def mergeable(self) -> bool:
        return not (self.table or self.standalone)


def _combined_path(first: tuple[str, ...], then: tuple[str, ...]) -> tuple[str, ...]:
    """The heading path of `then` with a bodyless heading path `first` kept in it: `then` continues
    `first` from the longest start of `then` that `first` already holds. A parent stays as it is
    (A + A>B: A>B); a title before a same-level heading becomes a step (T + Beans: T>Beans); so does
    an empty sibling (A>B + A>C: A>B>C)."""
    for size in range(min(len(first), len(then)), 0, -1):
        if any(first[start : start + size] == then[:size] for start in range(len(first) - size + 1)):
            return first + then[size:]
    return first + then


def _raw_sections(blocks: Sequence[Block]) -> list[_Section]:
    """Consecutive blocks with one heading path and page; a table or a standalone block alone."""
    sections: list[_Section] = []
    previous_key = None
    for index, block in enumerate(blocks):
        key = (block.heading_path, block.page)
        table = block.kind == "table" and len(block.text) >= MIN_BODY_CHARS  # not a header-only stub
        separate = block.standalone or table
        if separate or key != previous_key or not sections:
            sections.append(_Section([], block.heading_path, table=table, standalone=block.standalone))
        section = sections[-1]
        section.blocks.append(index)
        section.start = section.blocks[0]
        if block.kind != "heading":
            section.body_chars += len(block.text.strip())
        previous_key = None if separate else key
    return sections


def _join_headings(sections: list[_Section]) -> list[_Section]:
    """Heading-only sections joined to the section after them (see the module docstring, 2)."""
    joined: list[_Section] = []
    waiting: _Section | None = None
    for section in sections:
        if section.body_chars == 0 and section.mergeable:
            if waiting is None:
                waiting = section
            else:
                waiting.blocks += section.blocks
                waiting.heading_path = _combined_path(waiting.heading_path, section.heading_path)
            continue
        if waiting is not None:
            section.heading_path = _combined_path(waiting.heading_path, section.heading_path)
            section.start = waiting.start
            if not section.table:  # a table's text starts with its header row: the heading is its path
                section.blocks = waiting.blocks + section.blocks
            waiting = None
        joined.append(section)
    if waiting is not None:  # headings at the very end: they close the last section's text
        if joined and joined[-1].mergeable and joined[-1].blocks[-1] + 1 == waiting.blocks[0]:
            joined[-1].blocks += waiting.blocks
        else:
            joined.append(waiting)
    return joined


def _merge_slivers(sections: list[_Section], blocks: Sequence[Block]) -> list[_Section]:
    """Sections with under `MIN_BODY_CHARS` of body merged into an adjacent section (module
    docstring, 2). Only adjacent sections merge, so a chunk's text stays one span of the text."""
    result = list(sections)
    index = 0
    while index < len(result):
        section = result[index]
        if not section.mergeable or section.body_chars >= MIN_BODY_CHARS:
            index += 1
            continue
        following = result[index + 1] if index + 1 < len(result) else None
        if following is not None and following.table and _adjacent(section, following):
            caption = " ".join(blocks[i].text.strip() for i in section.blocks if blocks[i].kind != "heading")
            following.heading_path = (*_combined_path(section.heading_path, following.heading_path), caption)
            del result[index]
            continue
        neighbours = [
            (result[index - 1] if index > 0 else None, True),
            (result[index + 1] if index + 1 < len(result) else None, False),
        ]
        parent = section.heading_path[:-1]
        choice = next(
            (
                (other, before)
                for same_parent in (True, False)
                for other, before in neighbours
                if other is not None
                and other.mergeable
                and _adjacent(other, section)
                and (not same_parent or other.heading_path[: len(parent)] == parent)
            ),
            None,
        )
        if choice is None:
            index += 1
            continue
        other, before = choice
        other.blocks = other.blocks + section.blocks if before else section.blocks + other.blocks
        other.start = min(other.start, section.start)
        other.body_chars += section.body_chars
        del result[index]
        if before:
            index -= 1  # the grown section is looked at again; after: it is now at `index`
    return result


def _adjacent(first: _Section, second: _Section) -> bool:
    a, b = (first, second) if first.start < second.start else (second, first)
    return a.blocks[-1] + 1 == b.start


def _sections(document: ExtractedDocument) -> list[_Section]:
    """The document's sections after headings joined their body and slivers merged."""
    return _merge_slivers(_join_headings(_raw_sections(document.blocks)), document.blocks)


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
    for section in _sections(document):
        packer.heading_path = section.heading_path
        if section.table:
            (index,) = section.blocks
            yield from packer.table(document.blocks[index], *document.spans[index])
            continue
        for index in section.blocks:
            block, (start, end) = document.blocks[index], document.spans[index]
            packer.add_block(block.text, start, end, block.page, heading=block.kind == "heading")
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
        self.blocks: list[tuple[str, int, int, int | None, bool]] = []  # not yet measured
        self.pending_chars = 0
        self.units: list[_Unit] = []  # measured, not yet packed
        self.sizes: list[int] = []
        self.next_index = 0

    def add_block(self, text: str, start: int, end: int, page: int | None, heading: bool = False) -> None:
        self.blocks.append((text, start, end, page, heading))
        self.pending_chars += end - start

    def finish_section(self) -> Iterator[Chunk]:
        yield from self.pack(final=True)

    def _chunk(self, text: str, start: int, end: int, page: int | None, tokens: int) -> Chunk:
        chunk = Chunk(self.next_index, text, start, end, page, page, self.heading_path, tokens)
        self.next_index += 1
        return chunk

    def table(self, block: Block, start: int, end: int) -> Iterator[Chunk]:
        """A table block: whole when it fits, else rows packed under the repeated header row (see
        the module docstring, 5). A header taking over half the budget is not repeated (the rows
        would barely fit beside it); a row over the budget is cut like any long text."""
        text, budget = block.text, self.options.max_tokens
        header = table_header(text)
        lines = text.split("\n")
        offsets = [start]
        for line in lines[:-1]:
            offsets.append(offsets[-1] + len(line) + 1)
        rows = [(offsets[i], offsets[i] + len(lines[i])) for i in range(len(lines))]
        prefix_lines = 2 if header is not None else 0
        counts = self.count_tokens([text, header or "", *lines[prefix_lines:]])
        whole, header_tokens, row_tokens = counts[0], counts[1], counts[2:]
        if whole <= budget:
            yield self._chunk(text, start, end, block.page, whole)
            return
        if header is None or header_tokens > budget // 2:
            header, header_tokens, prefix_lines = None, 0, 0
            row_tokens = self.count_tokens(lines)
        rows, room = rows[prefix_lines:], budget - header_tokens
        first, chosen, total = True, [], 0

        def emit() -> Chunk:
            chunk_start = start if first and header is not None else chosen[0][0]
            chunk_text = self.view.slice(chunk_start, chosen[-1][1])
            if header is not None and not first:
                chunk_text = header + "\n" + chunk_text
            return self._chunk(chunk_text, chunk_start, chosen[-1][1], block.page, header_tokens + total)

        for (row_start, row_end), tokens in zip(rows, row_tokens, strict=True):
            if chosen and total + tokens > room:
                yield emit()
                first, chosen, total = False, [], 0
            if tokens <= room:
                chosen.append((row_start, row_end))
                total += tokens
                continue
            row = self.view.slice(row_start, row_end)  # one row over the budget: its pieces
            for a, b in _cut(row, 0, len(row), tokens, self.count_tokens, room):
                chosen, total = [(row_start + a, row_start + b)], self.count_tokens([row[a:b]])[0]
                yield emit()
                first, chosen, total = False, [], 0
        if chosen:
            yield emit()

    def _measure(self) -> None:
        if not self.blocks:
            return
        counts = self.count_tokens([text for text, *_ in self.blocks])
        budget = self.options.max_tokens
        for (text, start, end, page, heading), count in zip(self.blocks, counts, strict=True):
            if count <= budget:
                self.units.append(_Unit(start, end, page, heading))
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
            stop, total = _body_bounds(units, sizes, begin, stop, total)
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


def _body_bounds(units, sizes, begin: int, stop: int, total: int) -> tuple[int, int]:
    """The end of a chunk moved so that it holds body text: trailing heading units go to the next
    chunk (the one their body is in); a chunk of headings only takes the unit after them, even
    past the budget (headings are short; the embedding input is cut at the model limit anyway)."""
    end = stop
    while end - 1 > begin and units[end - 1].heading:
        end -= 1
    if units[end - 1].heading:  # headings only from `begin`: keep them with the next body unit
        end = stop
        while end < len(units) and units[end - 1].heading:
            end += 1
    return end, sum(sizes[begin:end]) if end != stop else total


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
