"""Search result snippets a person can read: the chunk's best sentences for the query, whole.

A snippet used to be a fixed window of characters around the densest run of query terms, so it
started and ended inside words (`…olar Panels Handbook`). Here the chunk is split into sentences,
the sentences sharing the most query terms are shown in document order, and a sentence is only
ever cut when it alone is wider than the snippet; then the cut falls on a word boundary (between
characters in Chinese or Japanese text, never inside a grapheme or a marked term).

The contract, for `highlight(text, query, width)`:
- HTML-safe; the query's terms (the analyzer's marks, kb/lexical.py) in <mark>.
- At most `width` visible characters (tags and entities not counted), ellipses included.
- "…" stands exactly where text was left out: before the first piece unless it starts the
  chunk, after the last unless it ends the chunk, and between two pieces that are not
  neighbours. Neighbouring sentences are joined by what separated them (a space, a line break).
- Sentences: English `.!?` followed by a space (not after a single initial or a usual
  abbreviation such as `e.g.` or `Dr.`), Chinese `。！？；` (with closing quotes), paragraph
  breaks and line breaks. A line break inside a hard-wrapped paragraph (the next line starts with
  a lowercase letter) is not a sentence break.
- Markdown table rows (`| a | b |`) are whole units: a row is never split, a row too long for the
  width is cut at cell borders, and the `|---|` separator row is never shown.
- No query term in the chunk (a dense-only hit): the chunk's first sentences.
- Whitespace runs are shown as one space (line breaks kept between sentences, for the web UI's
  pre-wrap and for table rows).
"""

from __future__ import annotations

import bisect
import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import regex

from embedhub.errors import InvalidInputError
from embedhub.kb.lexical import DEFAULT_ANALYZER, Analyzer

#: visible characters of a search result's snippet
DEFAULT_WIDTH = 280
#: the narrowest snippet asked for (a word and its ellipses must fit)
MIN_WIDTH = 16
#: a second sentence too long to show whole is still shown cut when at least this much room is
#: left (a shorter piece of it would be a fragment, not context)
MIN_CUT_PIECE = 60
ELLIPSIS = "…"

#: scripts written without spaces between words: any character boundary is a word boundary
_UNSPACED = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u3000-\u303f\uff00-\uffef]"
)
#: whitespace to rewrite: a run, or one character that is not a plain space
_WHITESPACE_RUN = regex.compile(r"\s{2,}|[^\S ]")
#: the end of a sentence in a spaced script: the mark, closing quotes or brackets, then a space
_LATIN_END = regex.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s)")
#: the end of a Chinese (or Japanese) sentence: no space follows
_CJK_END = regex.compile(r"[。！？；]+[”’」』）)\]》〕】]*")
_LAST_WORD = regex.compile(r"(\w+)$")
#: words after which a period does not end the sentence
ABBREVIATIONS = frozenset(
    {
        "e.g",
        "i.e",
        "cf",
        "vs",
        "viz",
        "al",
        "approx",
        "ca",
        "fig",
        "figs",
        "eq",
        "eqs",
        "no",
        "nos",
        "vol",
        "pp",
        "ch",
        "sec",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "est",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_TABLE_ROW = regex.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = regex.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HEADING = regex.compile(r"^\s*#{1,6}\s")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    table_row: bool = False


@dataclass(frozen=True)
class _Piece:
    """A shown range of one sentence (all of it, or a cut of a sentence wider than the snippet)."""

    sentence: int
    start: int
    end: int


def normalize_whitespace(text: str) -> str:
    """Whitespace runs as one space, or one line break when they hold one (a blank line stays)."""

    def one(match: regex.Match) -> str:
        run = match.group()
        newlines = run.count("\n")
        return "\n\n" if newlines > 1 else "\n" if newlines else " "

    return _WHITESPACE_RUN.sub(one, text).strip()


def sentences(text: str) -> list[Sentence]:
    """The sentences of `text` as character spans, in order, without surrounding whitespace and
    without table separator rows (the rules are in the module docstring)."""
    found: list[Sentence] = []
    for block_start, block_end, table_row in _blocks(text):
        if table_row:
            found.append(Sentence(block_start, block_end, True))
            continue
        start = block_start
        for end in _sentence_ends(text, block_start, block_end):
            found.extend(_trimmed(text, start, end))
            start = end
        found.extend(_trimmed(text, start, block_end))
    return found


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """Lines grouped into blocks: a paragraph's hard-wrapped lines form one block; a heading, a
    list item, a table row or a line starting with anything but a lowercase letter starts one."""
    blocks: list[tuple[int, int, bool]] = []
    position = 0
    previous_joinable = False
    for line in text.split("\n"):
        start, end = position, position + len(line)
        position = end + 1
        stripped = line.strip()
        if not stripped:
            previous_joinable = False
            continue
        if _TABLE_ROW.match(line):
            if not _TABLE_SEPARATOR.match(line):
                blocks.append((start, end, True))
            previous_joinable = False
            continue
        if previous_joinable and unicodedata.category(stripped[0]) == "Ll":
            block_start, _, _ = blocks.pop()
            blocks.append((block_start, end, False))
        else:
            blocks.append((start, end, False))
        previous_joinable = not _HEADING.match(line)
    return blocks


def _sentence_ends(text: str, start: int, end: int) -> list[int]:
    ends = [match.end() for match in _CJK_END.finditer(text, start, end)]
    for match in _LATIN_END.finditer(text, start, end):
        if match.group().startswith(".") and not _ends_sentence(text, match.start(), start):
            continue
        ends.append(match.end())
    return sorted(set(ends))


def _ends_sentence(text: str, period: int, block_start: int) -> bool:
    """Whether the period at `period` ends a sentence: not after an abbreviation, an initial or a
    list number at the start of a line."""
    before = text[max(block_start, period - 12) : period]
    word_match = _LAST_WORD.search(before)
    if word_match is None:
        return True
    word = word_match.group(1)
    lowered = word.lower()
    if len(word) == 1 and not word.isdigit():
        return False  # an initial (J. Smith) or part of one (U.S.)
    if lowered in ABBREVIATIONS or before.lower().endswith(("e.g", "i.e")):
        return False
    word_start = period - len(word)
    line_start = text.rfind("\n", block_start, word_start) + 1 or block_start
    return not (word.isdigit() and not text[max(line_start, block_start) : word_start].strip())


def _trimmed(text: str, start: int, end: int) -> list[Sentence]:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return []
    offset = start + len(piece) - len(piece.lstrip())
    return [Sentence(offset, offset + len(stripped))]


def highlight(
    text: str, query: str, width: int = DEFAULT_WIDTH, analyzer: Analyzer = DEFAULT_ANALYZER
) -> str:
    """An HTML-safe snippet of `text` for `query`: its best sentences, whole where they fit, the
    query's terms in <mark> (the contract is in the module docstring)."""
    if width < MIN_WIDTH:
        raise InvalidInputError(f"a snippet width of {width} is too narrow; ask for at least {MIN_WIDTH}")
    text = normalize_whitespace(text)
    if not text:
        return ""
    found = sentences(text)
    if not found:
        return ""
    marks = analyzer.marks(text, query)
    pieces = _choose(text, found, marks, query, width, analyzer)
    return _render(text, found, pieces, marks)


def _choose(
    text: str,
    found: Sequence[Sentence],
    marks: Sequence[tuple[int, int]],
    query: str,
    width: int,
    analyzer: Analyzer,
) -> list[_Piece]:
    """The sentences (or cuts of them) to show: the one sharing the most query terms first, then
    those adding terms not shown yet, then their neighbours as context, while they fit."""
    wanted = {term for term in analyzer.terms(query) if len(term) > 1}
    starts = [sentence.start for sentence in found]
    per_sentence: dict[int, list[tuple[int, int]]] = {}
    for mark in marks:
        index = bisect.bisect_right(starts, mark[0]) - 1
        if index >= 0 and mark[1] <= found[index].end:
            per_sentence.setdefault(index, []).append(mark)
    query_terms_of: dict[str, frozenset[str]] = {}  # per marked word: the query terms it stands for

    def query_terms(word: str) -> frozenset[str]:
        if word not in query_terms_of:
            query_terms_of[word] = frozenset(wanted.intersection(analyzer.terms(word)) or {word.lower()})
        return query_terms_of[word]

    terms_of = {
        index: {term for start, end in spans for term in query_terms(text[start:end])}
        for index, spans in per_sentence.items()
    }
    chosen: dict[int, _Piece] = {}
    covered: set[str] = set()
    candidates = set(per_sentence)
    while candidates:
        best = max(
            candidates,
            key=lambda index: (
                len(terms_of[index] - covered),
                len(terms_of[index]),
                len(per_sentence[index]),
                -index,
            ),
        )
        candidates.discard(best)
        piece = _fit(text, found, chosen, best, per_sentence[best], width)
        if piece is not None:
            chosen[best] = piece
            covered |= terms_of[best]
    if not chosen:  # a dense-only hit: the chunk's first sentences
        piece = _fit(text, found, chosen, 0, [], width)
        if piece is not None:
            chosen[0] = piece
    _add_context(text, found, chosen, width)
    return [chosen[index] for index in sorted(chosen)]


def _fit(
    text: str,
    found: Sequence[Sentence],
    chosen: dict[int, _Piece],
    index: int,
    marks: Sequence[tuple[int, int]],
    width: int,
) -> _Piece | None:
    """Sentence `index` whole if it fits beside the chosen pieces, else the cut of it around its
    marks that fits (None when the room left is too small for a useful piece)."""
    sentence = found[index]
    whole = _Piece(index, sentence.start, sentence.end)
    if _length(text, found, {**chosen, index: whole}) <= width:
        return whole
    room = width - _length(text, found, {**chosen, index: _Piece(index, sentence.start, sentence.start)})
    if chosen and room < MIN_CUT_PIECE:
        return None
    budget = room
    while budget > 0:  # the ellipses a cut adds depend on where it falls: shrink until it fits
        piece = _cut(text, sentence, index, marks, budget)
        if piece is None:
            return None
        over = _length(text, found, {**chosen, index: piece}) - width
        if over <= 0:
            return piece
        budget -= over
    return None


def _cut(
    text: str, sentence: Sentence, index: int, marks: Sequence[tuple[int, int]], budget: int
) -> _Piece | None:
    """At most `budget` characters of a sentence, around its densest run of marks (its start
    when it has none), starting and ending on word boundaries (cell borders in a table row)."""
    begin, finish = sentence.start, sentence.end
    starts, ends = _cut_points(text, sentence, marks, budget)
    if not starts or not ends:
        return None
    anchor, best_count = begin, -1
    for mark_start, _ in marks:
        window_start = max(begin, mark_start - budget // 4)
        count = sum(1 for start, end in marks if start >= window_start and end <= window_start + budget)
        if count > best_count:
            anchor, best_count = window_start, count
    start_index = bisect.bisect_left(starts, anchor)
    if start_index == len(starts):
        return None
    # in unspaced text every character boundary is a cut point: prefer one after a space or a
    # punctuation mark within a quarter of the budget, before the first mark (not `…条 为` but `…为`)
    first_mark = min((start for start, _ in marks if start >= anchor), default=finish)
    latest = min(first_mark, anchor + budget // 4)
    start = next(
        (point for point in starts[start_index:] if point <= latest and _opens(text, point, begin)),
        starts[start_index],
    )
    end_index = bisect.bisect_right(ends, min(finish, start + budget)) - 1
    if end_index < 0 or ends[end_index] <= start:
        return None
    end = ends[end_index]
    last_mark = max(
        (stop for mark_start, stop in marks if mark_start >= start and stop <= end), default=start
    )
    earliest = max(last_mark, end - budget // 4, start + 1)
    end = next(
        (
            point
            for point in reversed(ends[: end_index + 1])
            if point >= earliest and _closes(text, point, finish)
        ),
        end,
    )
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Piece(index, start, end) if end > start else None


def _cut_points(
    text: str, sentence: Sentence, marks: Sequence[tuple[int, int]], budget: int
) -> tuple[list[int], list[int]]:
    """Where a cut of the sentence may start and end: word boundaries (a space on either side, or
    a character of an unspaced script) that are grapheme boundaries outside every mark; in a
    table row the cell borders. A sentence that is one word wider than the snippet (a URL) has
    no inner boundary: it is cut between graphemes."""
    begin, finish = sentence.start, sentence.end
    inside = set()
    for start, end in marks:
        inside.update(range(start + 1, end))
    if sentence.table_row:
        borders = [position for position in range(begin, finish) if text[position] == "|"]
        if len(borders) > 1:
            return borders, [position + 1 for position in borders]
    # only where a cut of `budget` characters around the marks can start or end (a long sentence
    # is not scanned whole); an edge of that region may fall inside a grapheme, so it is no point
    if marks:
        low = max(begin, min(start for start, _ in marks) - budget // 4 - 1)
        high = min(finish, max(start for start, _ in marks) + budget // 4 + budget + 1)
    else:
        low, high = begin, min(finish, begin + budget + 1)
    graphemes = [low + match.start() for match in regex.finditer(r"\X", text[low:high])] + [high]
    graphemes = [position for position in graphemes if low < position < high or position in (begin, finish)]
    points = [
        position
        for position in graphemes
        if position in (begin, finish)
        or (
            position not in inside
            and (
                text[position - 1].isspace()
                or text[position].isspace()
                or _UNSPACED.match(text[position - 1])
                or _UNSPACED.match(text[position])
            )
        )
    ]
    if len(points) <= 2:
        points = [position for position in graphemes if position not in inside]
    return points, points


def _opens(text: str, position: int, begin: int) -> bool:
    """Whether a piece starting here starts cleanly: at the sentence's start, or after a space or
    a punctuation mark."""
    return (
        position == begin
        or text[position - 1].isspace()
        or unicodedata.category(text[position - 1])[0] == "P"
    )


def _closes(text: str, position: int, finish: int) -> bool:
    """Whether a piece ending here ends cleanly: at the sentence's end, before a space, or after or
    before a punctuation mark."""
    return (
        position == finish
        or text[position].isspace()
        or unicodedata.category(text[position - 1])[0] == "P"
        or unicodedata.category(text[position])[0] == "P"
    )


def _add_context(text: str, found: Sequence[Sentence], chosen: dict[int, _Piece], width: int) -> None:
    """Whole neighbouring sentences of the chosen ones (the next first), while they fit: fewer
    omissions and the text around a match."""
    added = True
    while added:
        added = False
        for index in sorted(chosen):
            if chosen[index] != _Piece(index, found[index].start, found[index].end):
                continue  # a cut sentence has no whole neighbour beside it
            room = width - _length(text, found, chosen)
            for neighbour in (index + 1, index - 1):
                if not 0 <= neighbour < len(found) or neighbour in chosen:
                    continue
                whole = _Piece(neighbour, found[neighbour].start, found[neighbour].end)
                if whole.end - whole.start > room + len(" … "):
                    continue  # longer than the room left (and an ellipsis it may replace): skip the layout
                if _length(text, found, {**chosen, neighbour: whole}) <= width:
                    chosen[neighbour] = whole
                    room = width - _length(text, found, chosen)
                    added = True


def _layout(text: str, found: Sequence[Sentence], chosen: dict[int, _Piece]) -> list[str | _Piece]:
    """The snippet as pieces and the joins between them (ellipses, or what separated neighbours)."""
    pieces = [chosen[index] for index in sorted(chosen)]
    parts: list[str | _Piece] = []
    if not pieces:
        return parts
    first, last = pieces[0], pieces[-1]
    if first.start > found[0].start:
        parts.append(ELLIPSIS + _space_beside(text[first.start]))
    for previous, piece in zip([None, *pieces], pieces, strict=False):
        if previous is not None:
            adjacent = (
                piece.sentence == previous.sentence + 1
                and previous.end == found[previous.sentence].end
                and piece.start == found[piece.sentence].start
            )
            if adjacent:
                between = text[previous.end : piece.start]
                parts.append("\n" if "\n" in between else between)
            else:
                space = _space_beside(_base_before(text, previous.end)) or _space_beside(text[piece.start])
                parts.append(space + ELLIPSIS + space)
        parts.append(piece)
    if last.end < found[-1].end:
        parts.append(_space_beside(_base_before(text, last.end)) + ELLIPSIS)
    return parts


def _space_beside(character: str) -> str:
    """The space an ellipsis gets next to this character: none beside Chinese or Japanese text."""
    return "" if _UNSPACED.match(character) else " "


def _base_before(text: str, position: int) -> str:
    """The character that starts the grapheme ending at `position` (a combining mark or a
    variation selector belongs to the character before it)."""
    index = position - 1
    while index > 0 and unicodedata.category(text[index]) in ("Mn", "Mc", "Me", "Cf"):
        index -= 1
    return text[index]


def _length(text: str, found: Sequence[Sentence], chosen: dict[int, _Piece]) -> int:
    return sum(
        len(part) if isinstance(part, str) else part.end - part.start for part in _layout(text, found, chosen)
    )


def _render(
    text: str, found: Sequence[Sentence], pieces: Sequence[_Piece], marks: Sequence[tuple[int, int]]
) -> str:
    out: list[str] = []
    for part in _layout(text, found, {piece.sentence: piece for piece in pieces}):
        if isinstance(part, str):
            out.append(part)
            continue
        cursor = part.start
        for start, end in marks:
            if start < part.start or end > part.end:
                continue
            out.append(_visible(text[cursor:start]))
            out.append("<mark>" + _visible(text[start:end]) + "</mark>")
            cursor = end
        out.append(_visible(text[cursor : part.end]))
    return "".join(out)


def _visible(text: str) -> str:
    """HTML-escaped, a hard-wrapped line break inside a sentence shown as the space it stands for."""
    return html.escape(text.replace("\n", " "))
