"""The loader contract: a file in, an `ExtractedDocument` (ordered blocks with structure) out.

Blocks keep what citations need: the heading path they sit under and the physical page (1-based)
they come from. The document text is the blocks joined by blank lines, and every block knows its
character span in it, so chunks can cite spans of the extracted text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from embedhub.errors import EmbedhubError

BlockKind = Literal["heading", "paragraph", "list", "table", "code", "page"]
BLOCK_SEPARATOR = "\n\n"


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


def looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        # a multi-byte character cut at the sample boundary is still text
        return error.start >= len(sample) - 4
    return True


def decode_text(data: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "gb18030", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
    raise LoaderError(f"{path.name}: not valid text in UTF-8, GB18030 or UTF-16")
