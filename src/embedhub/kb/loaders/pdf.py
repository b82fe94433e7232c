"""PDF with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL): text per physical page, 1-based.

Tables of contents and back-of-book indexes are left out of the text. They repeat every heading
and key term of the document next to page numbers, so for a question such as "what is a column
mask" the contents page matched as well as the definition and ranked above it (a user found the
definition seventh behind the contents of an IBM Redbook). The pages are still in the PDF (page
numbers, rendering and citations are unchanged); only their words are not indexed.

Ruled tables become table blocks (kb/loaders/pdf_tables.py finds them on pages that draw a grid
of rules): the page's text is then its text outside the tables, with each table in its place in
the reading order, so a table row is cited under its column names and never twice. Rotated pages
keep their tables as text (pdfplumber and pypdfium2 would place them differently).
"""

from __future__ import annotations

import io
import itertools
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, LoaderError, pipe_table
from embedhub.kb.loaders.pdf_tables import PdfTable, TableFinder, may_have_tables
from embedhub.kb.loaders.text import paragraphs

if TYPE_CHECKING:
    from PIL import Image


class PdfLoader(Loader):
    name = "pdf"
    extensions = (".pdf",)

    def sniff(self, data: bytes) -> bool:
        return data[:1024].lstrip().startswith(b"%PDF")

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            reason = str(error)
            if "password" in reason.lower():
                raise LoaderError(f"{path.name}: the PDF is encrypted (password protected)") from error
            raise LoaderError(f"{path.name}: not a readable PDF ({reason})") from error
        texts: list[str] = []
        #: per page with tables: its text outside them and its tables, in reading order
        pieces: dict[int, list[str | PdfTable]] = {}
        needs_ocr: list[int] = []
        warnings: list[str] = []
        finder = TableFinder(data)
        try:
            pages = len(pdf)
            for number in range(pages):
                page = pdf[number]
                textpage = page.get_textpage()
                text = textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
                texts.append(text)
                if not has_text_layer(text, page.get_size(), _image_share(page)):
                    needs_ocr.append(number + 1)
                elif finder.usable and not page.get_rotation() and may_have_tables(page, textpage):
                    try:
                        tables = finder.tables(number + 1)
                    except Exception as error:
                        # pdfminer raises many kinds of error on PDFs pdfium reads: the page keeps its text
                        warnings.append(
                            f"page {number + 1}: tables not read ({type(error).__name__}: {error})"
                        )
                        tables = []
                    if tables:
                        pieces[number + 1] = split_page(textpage, tables)
                textpage.close()
                page.close()
        finally:
            pdf.close()
            finder.close()
        content = [without_navigation(text) for text in texts]
        if not any(text.strip() for text in content):
            content = texts  # nothing but contents pages: better indexed than refused
        blocks = []
        for number, text in enumerate(content, start=1):
            if number in pieces and text.strip():
                blocks.extend(_page_blocks(pieces[number], number))
            else:
                blocks.extend(Block(part.strip(), kind="paragraph", page=number) for part in paragraphs(text))
        if not blocks and not needs_ocr:
            raise LoaderError(f"{path.name}: no extractable text in {pages} page(s)")
        return ExtractedDocument(path, "pdf", blocks, pages=pages, needs_ocr=needs_ocr, warnings=warnings)

    def page_image(self, data: bytes, page: int, dpi: int) -> Image.Image:
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(data)
        try:
            return pdf[page - 1].render(scale=dpi / 72, grayscale=True).to_pil()
        finally:
            pdf.close()


def split_page(textpage, tables: list[PdfTable]) -> list[str | PdfTable]:
    """The page's text in pypdfium2's reading order with the characters inside each table taken
    out, and each table in the place of its first character: text, table, text, ...

    A character belongs to the table its box's centre falls in; characters pdfium generates (the
    spaces and line breaks it inserts, with no box of their own) go with the character before."""
    count = textpage.count_chars()
    if count <= 0:
        return []
    owners: list[PdfTable | None] = []
    owner = None
    for index in range(count):
        left, bottom, right, top = textpage.get_charbox(index)
        if right > left or top > bottom:
            x, y = (left + right) / 2, (bottom + top) / 2
            owner = next((table for table in tables if table.contains(x, y)), None)
        owners.append(owner)
    pieces: list[str | PdfTable] = []
    placed: set[int] = set()
    start = 0
    for index in range(count + 1):
        if index < count and owners[index] is owners[start]:
            continue
        table = owners[start]
        if table is None:
            text = textpage.get_text_range(start, index - start).replace("\r\n", "\n").replace("\r", "\n")
            # the hyphen of a word broken at a line end: U+FFFE here, \x02 in get_text_bounded
            pieces.append(text.replace("\ufffe", "\x02"))
        elif id(table) not in placed:
            placed.add(id(table))
            pieces.append(table)
        start = index
    # a table none of pdfium's characters fall in (the two libraries disagree on where it is) is
    # left out: its words are in the page text, and a table must not be there twice
    return pieces


def _page_blocks(pieces: list[str | PdfTable], page: int) -> list[Block]:
    blocks = []
    for piece in pieces:
        if isinstance(piece, PdfTable):
            blocks.append(Block(pipe_table(piece.rows), kind="table", page=page))
        else:
            text = without_navigation(piece)
            blocks.extend(Block(part.strip(), kind="paragraph", page=page) for part in paragraphs(text))
    return blocks


#: A page is read by OCR when its text layer is missing or useless (kb/ocr.py):
#: - fewer letters/digits (any script) than `MIN_WORD_CHARACTERS`: nothing but a page number or a
#:   scanner's stamp;
#: - or fewer than `MIN_WORD_CHARACTERS_PER_SQUARE_INCH` of them while images cover at least
#:   `MIN_IMAGE_SHARE` of the page: a scan with a header line in text. (One per square inch is
#:   about 95 on A4/Letter, one line; a typeset page holds 2,000-4,000. A digital page with short
#:   text and no picture, a title page, keeps its text layer.)
#: - or more than `MAX_UNREADABLE_SHARE` of its visible characters are unreadable (U+FFFD,
#:   control or private-use code points: a font without a Unicode map, common in old scans'
#:   invisible text layers and in PDFs from some typesetters).
MIN_WORD_CHARACTERS = 16
MIN_WORD_CHARACTERS_PER_SQUARE_INCH = 1.0
MIN_IMAGE_SHARE = 0.5
MAX_UNREADABLE_SHARE = 0.3


def has_text_layer(text: str, size_points: tuple[float, float], image_share: float) -> bool:
    """Whether a page's extracted text is worth indexing as it is (see the rule above)."""
    visible = [character for character in text if not character.isspace()]
    word_characters = sum(1 for character in visible if character.isalnum())
    if word_characters < MIN_WORD_CHARACTERS:
        return False
    square_inches = max(1.0, size_points[0] * size_points[1] / 72**2)
    sparse = word_characters / square_inches < MIN_WORD_CHARACTERS_PER_SQUARE_INCH
    if sparse and image_share >= MIN_IMAGE_SHARE:
        return False
    unreadable = sum(1 for character in visible if _unreadable(character))
    return unreadable <= MAX_UNREADABLE_SHARE * len(visible)


def _unreadable(character: str) -> bool:
    return character == "\ufffd" or unicodedata.category(character) in ("Cc", "Co", "Cs")


def _image_share(page) -> float:
    """The share of the page's area covered by images (their bounding boxes, capped at 1)."""
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()
    covered = 0.0
    for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        left, bottom, right, top = image.get_bounds()
        shown_width = max(0.0, min(right, width) - max(left, 0.0))
        covered += shown_width * max(0.0, min(top, height) - max(bottom, 0.0))
    return min(1.0, covered / max(1.0, width * height))


# "2.3 Column masks ........ 45", "Index . . . 301": a title, a leader of dots (or similar), a page.
_LEADER_LINE = re.compile(r"^\s*\S.*?\S\s*(?:[.·…_\-]\s*){3,}\s*(\d{1,4}|[ivxlcdm]{1,7})\s*$", re.IGNORECASE)
# "2.3 Column masks 45" (leaders lost in extraction): words, then one page number.
_TITLE_PAGE_LINE = re.compile(r"^\s*\S.*?[^\d\s,.;:]\s+(\d{1,4})\s*$")
# "column mask, 45, 67-69" / "column mask 45, 67": an index entry with page numbers.
_PAGES = r"\d{1,4}(?:\s*[-–]\s*\d{1,4})?"
_INDEX_LINE = re.compile(rf"^\s*[^\d\s].*?[,\s]\s*({_PAGES})(?:\s*,\s*{_PAGES})*\s*$")
_NAVIGATION_SHARE = 0.6
_MIN_LINES = 6


def _page_number(match: re.Match) -> int | None:
    value = match.group(1)
    return int(value) if value.isdigit() else None


def _mostly_ascending(values: list) -> bool:
    pairs = list(itertools.pairwise(values))
    return bool(pairs) and sum(1 for a, b in pairs if a <= b) >= 0.8 * len(pairs)


def is_navigation_page(text: str) -> bool:
    """A table of contents (titles with ascending page numbers) or an index (alphabetical terms
    with page numbers) filling most of a page. A table of figures ending in numbers is neither:
    its numbers do not ascend, or its rows are not alphabetical."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < _MIN_LINES:
        return False
    contents = [m for m in (_LEADER_LINE.match(x) or _TITLE_PAGE_LINE.match(x) for x in lines) if m]
    if len(contents) >= _NAVIGATION_SHARE * len(lines):
        numbers = [n for n in map(_page_number, contents) if n is not None]
        if len(numbers) < 2 or _mostly_ascending(numbers):
            return True
    entries = [line.strip() for line in lines if _INDEX_LINE.match(line)]
    if len(entries) >= _NAVIGATION_SHARE * len(lines):
        return _mostly_ascending([entry[:1].lower() for entry in entries])
    return False


def without_navigation(text: str) -> str:
    """The page text, empty for a contents or index page, and without runs of three or more
    dot-leader lines elsewhere (a contents section that shares its page with other text)."""
    if is_navigation_page(text):
        return ""
    lines = text.split("\n")
    leader = [bool(_LEADER_LINE.match(line)) for line in lines]
    kept, index = [], 0
    while index < len(lines):
        end = index
        while end < len(lines) and leader[end]:
            end += 1
        if end - index >= 3:
            index = end
            continue
        kept.append(lines[index])
        index += 1
    return "\n".join(kept)


def render_page(path: Path, page: int, scale: float = 1.5) -> bytes:
    """One page (1-based, physical) as PNG bytes, for citations shown beside their text."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        image = pdf[page - 1].render(scale=scale).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        pdf.close()
