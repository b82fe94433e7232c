"""DOCX with python-docx: heading styles build the heading path; lists and tables (as pipe rows)
kept in order."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, LoaderError, pipe_table


class DocxLoader(Loader):
    name = "docx"
    extensions = (".docx",)

    def sniff(self, data: bytes) -> bool:
        if not data.startswith(b"PK"):
            return False
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "word/document.xml" in archive.namelist()
        except zipfile.BadZipFile:
            return False

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        try:
            document = docx.Document(io.BytesIO(data))
        except Exception as error:  # python-docx raises several types for broken packages
            raise LoaderError(f"{path.name}: not a readable DOCX file ({error})") from error
        blocks: list[Block] = []
        headings: list[tuple[int, str]] = []
        title = None
        for element in _body_elements(document.element.body):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "p":
                paragraph = Paragraph(element, document)
                text = paragraph.text.strip()
                if not text:
                    continue
                style = (paragraph.style.name if paragraph.style is not None else "") or ""
                level = _heading_level(style)
                if level is not None:
                    headings = [h for h in headings if h[0] < level] + [(level, text)]
                    title = title or text
                    blocks.append(Block(text, kind="heading", heading_path=tuple(h for _, h in headings)))
                    continue
                is_list = "list" in style.lower() or (
                    paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None
                )
                blocks.append(
                    Block(
                        ("- " + text) if is_list else text,
                        kind="list" if is_list else "paragraph",
                        heading_path=tuple(h for _, h in headings),
                    )
                )
            elif tag == "tbl":
                text = _table_text(Table(element, document))
                if text:
                    blocks.append(Block(text, kind="table", heading_path=tuple(h for _, h in headings)))
        return ExtractedDocument(path, "docx", blocks, title=title)


def _body_elements(parent):
    """Paragraphs and tables in order, including those inside content controls (`w:sdt`, which
    templates wrap around whole tables: read only at the top level, such a table was lost)."""
    for element in parent.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "sdt":
            for content in element.iterchildren():
                if content.tag.rsplit("}", 1)[-1] == "sdtContent":
                    yield from _body_elements(content)
        else:
            yield element


def _table_text(table) -> str:
    """The table as pipe rows (see `pipe_table`), its first row the header. A merged cell is the same
    cell object in every grid position it spans: it is written once, so "Yes | Yes" in two real
    cells stays two cells."""
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            if cell._tc is not previous:
                cells.append(cell.text)
            previous = cell._tc
        rows.append(cells)
    return pipe_table(rows)


def _heading_level(style: str) -> int | None:
    lowered = style.lower()
    if lowered == "title":
        return 1
    if lowered.startswith("heading"):
        digits = "".join(ch for ch in lowered if ch.isdigit())
        return int(digits) if digits else 1
    return None
