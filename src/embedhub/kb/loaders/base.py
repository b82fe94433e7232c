"""The loader contract: a file in, an `ExtractedDocument` (ordered blocks with structure) out.

Blocks keep what citations need: the heading path they sit under and the physical page (1-based)
they come from. The document text is the blocks joined by blank lines, and every block knows its
character span in it, so chunks can cite spans of the extracted text.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from embedhub.errors import EmbedhubError

BlockKind = Literal["heading", "paragraph", "list", "table", "code", "page"]
BLOCK_SEPARATOR = "\n\n"


#: the line under a Markdown pipe table's header row: `| --- | :---: |`
_TABLE_SEPARATOR = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")


def pipe_table(rows: Sequence[Sequence[str]]) -> str:
    """A table block's text: Markdown pipe rows, the first row the header, then its separator line.

    Every loader writes tables this way so the chunker can split them by rows and repeat the header
    in each piece, and the UI can draw them as tables. Cells are one line each (a newline becomes a
    space, a pipe is escaped); short rows are padded so every row has the header's columns."""
    cleaned = [[" ".join(cell.split()).replace("|", "\\|") for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cleaned]
    return "\n".join([lines[0], "|" + " --- |" * width, *lines[1:]])


def table_header(text: str) -> str | None:
    """The header row and separator line of a pipe table's text, or None when it is not one."""
    lines = text.split("\n", 2)
    if len(lines) >= 2 and lines[0].startswith("|") and _TABLE_SEPARATOR.match(lines[1].replace(" ", "")):
        return lines[0] + "\n" + lines[1]
    return None


class LoaderError(EmbedhubError):
    """A file that cannot be read: broken, empty, encrypted, or not what its name says."""


@dataclass(frozen=True)
class Block:
    text: str
    kind: BlockKind = "paragraph"
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    #: a unit that should not be merged with its neighbours (a function, a class)
    standalone: bool = False


@dataclass
class ExtractedDocument:
    path: Path
    file_type: str
    blocks: list[Block]
    title: str | None = None
    pages: int | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    #: the text encoding the file was read with (text formats only; None for PDF / DOCX)
    encoding: str | None = None

    def __post_init__(self) -> None:
        self.blocks = [block for block in self.blocks if block.text.strip()]
        self.spans = []
        position = 0
        for block in self.blocks:
            self.spans.append((position, position + len(block.text)))
            position += len(block.text) + len(BLOCK_SEPARATOR)

    @property
    def text(self) -> str:
        return BLOCK_SEPARATOR.join(block.text for block in self.blocks)


class Loader(ABC):
    """Reads one file format. `sniff` checks content, so a mislabelled file is caught."""

    name: str
    extensions: tuple[str, ...]

    @abstractmethod
    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        """Extract the document; raise LoaderError with a reason a person can act on."""

    def sniff(self, data: bytes) -> bool:
        """Whether the bytes look like this format (default: any decodable text)."""
        return looks_like_text(data)


#: bytes examined to decide text-or-binary and to guess a legacy encoding; a whole 50 MB file is
#: only decoded once, after the guess
SNIFF_BYTES = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: single-byte Western text is ambiguous between code pages (charset-normalizer often ties
#: cp1250 and cp1252 on short samples); on a tie the Western default wins, as in browsers, where
#: a "latin-1" label also means windows-1252 (identical for every printable Latin-1 character)
_PREFERRED_ON_TIE = ("cp1252",)


def detect_encoding(data: bytes) -> str | None:
    """The text encoding of `data`, or None when it is binary.

    Order: a byte-order mark decides (UTF-8/16/32); valid UTF-8 is UTF-8 (the common case, checked
    at C speed); otherwise charset-normalizer guesses from the first `SNIFF_BYTES` (GBK/GB18030,
    Big5, Shift-JIS, cp1252, Latin-1, ...) and returns nothing for binary such as images or random
    bytes. A NUL byte without a UTF-16/32 BOM is binary."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        return None  # NUL is valid UTF-8 but no text file holds one (UTF-16/32 start with a BOM)
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 4 and len(data) > len(sample):
            return "utf-8"  # a multi-byte character cut at the sample boundary
    import charset_normalizer

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        if (
            match.encoding in _PREFERRED_ON_TIE
            and match.chaos <= best.chaos
            and match.coherence >= best.coherence - 0.01
        ):
            return match.encoding
    for name in _PREFERRED_ON_TIE:  # charset-normalizer drops code pages that decode identically
        with contextlib.suppress(UnicodeDecodeError):
            if sample.decode(name) == str(best):
                return name
    return best.encoding


def looks_like_text(data: bytes) -> bool:
    """Whether the bytes are text in some encoding (binary is refused, legacy encodings are not)."""
    return detect_encoding(data) is not None


def decode_text_with_encoding(data: bytes, path: Path) -> tuple[str, str]:
    """The text (newlines normalised) and the encoding it was read with."""
    encoding = detect_encoding(data)
    if encoding is None:
        raise LoaderError(f"{path.name}: binary data, not text in any known encoding")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        # the guess came from the first SNIFF_BYTES; the rest disagrees: guess from everything
        import charset_normalizer

        best = charset_normalizer.from_bytes(data).best()
        if best is None:
            message = f"{path.name}: not valid text in {encoding} or any other known encoding"
            raise LoaderError(message) from error
        encoding, text = best.encoding, str(best)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, encoding


def decode_text(data: bytes, path: Path) -> str:
    return decode_text_with_encoding(data, path)[0]
