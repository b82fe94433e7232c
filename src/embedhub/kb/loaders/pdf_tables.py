"""Ruled tables in PDF pages, found with pdfplumber (MIT, on pdfminer.six), as rows of cell text.

pypdfium2 reads a page's text fast but gives no structure, so a table row read from it is a line of
numbers without its column names. pdfplumber finds tables from the page's drawn rules and reads
each cell's text. It is slower than pypdfium2, so the PDF loader only asks it about pages that draw
a grid of rules with text in it (`may_have_tables`), and keeps pypdfium2 for the rest of the text.

Two things pdfplumber's defaults get wrong on real papers are corrected here:
- tables ruled inside but open at the sides (vertical rules between columns, none at the left and
  right edges) lose their first and last columns: the outer edges are taken from the ends of the
  horizontal rules that cross the table, and the table is found again with them;
- header cells spanning columns ("TEDs" over "simple", "complex", "all") and rows: the header is
  the table's first rows down to the first row no header cell reaches, joined per column, so the
  columns read "TEDs simple", "TEDs complex", as a reader would name them.

A candidate is kept only if it looks like a table: at least 2 rows and 2 columns with text, and
most cells holding text (boxes around a code listing or a drawing are not tables).
"""

from __future__ import annotations

import ctypes
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pdfplumber.page

#: points: rules and cell edges closer than this are the same line
_SNAP = 1.5
#: a table needs at least this many rows (header included) and columns holding text
MIN_ROWS = 2
MIN_COLUMNS = 2
#: and at least this share of its cells holding text
MIN_FILLED_SHARE = 0.5


@dataclass(frozen=True)
class PdfTable:
    #: left, bottom, right, top in PDF user space (the coordinates pypdfium2 gives characters)
    bbox: tuple[float, float, float, float]
    #: the header row first, then the data rows, all with the same number of cells
    rows: list[list[str]]

    def contains(self, x: float, y: float) -> bool:
        left, bottom, right, top = self.bbox
        return left <= x <= right and bottom <= y <= top


def may_have_tables(page, textpage) -> bool:
    """Whether a pypdfium2 page draws a grid of rules with text in most of its cells, by the
    same rule pdfplumber uses (`find_tables`' "lines" strategy) applied to the page's straight
    segments as pdfium reads them.

    pdfplumber parses the whole page with pdfminer first (0.1-0.6 s a page, 20-100 times pypdfium2's
    text), so it is asked only about pages that pass this check: text pages, pictures and technical
    drawings (boxes with nothing inside) do not."""
    from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges

    edges = _rule_edges(page)
    if len(edges) < 4:
        return False
    edges = merge_edges(edges, snap_x_tolerance=3, snap_y_tolerance=3, join_x_tolerance=3, join_y_tolerance=3)
    edges = [edge for edge in edges if edge["x1"] - edge["x0"] >= 3 or edge["bottom"] - edge["top"] >= 3]
    cells = intersections_to_cells(edges_to_intersections(edges, 3, 3))
    horizontal = [edge for edge in edges if edge["orientation"] == "h"]
    for group in cells_to_tables(cells):
        if len({cell[1] for cell in group}) < MIN_ROWS:
            continue
        if len({cell[0] for cell in group}) < MIN_COLUMNS and not _open_sided(group, horizontal):
            continue  # one column in a box: a code listing, a framed note
        # edges are measured with y negated (so "top" is the smaller value, as pdfplumber expects)
        filled = sum(
            1 for x0, top, x1, bottom in group if textpage.get_text_bounded(x0, -bottom, x1, -top).strip()
        )
        if filled >= MIN_FILLED_SHARE * len(group):
            return True
    return False


def _open_sided(group: list[tuple[float, float, float, float]], horizontal: list[dict]) -> bool:
    """Whether at least two horizontal rules through the cells run on past their left or right
    side: more columns outside the vertical rules (see `_table`)."""
    x0, x1 = min(cell[0] for cell in group), max(cell[2] for cell in group)
    top, bottom = min(cell[1] for cell in group), max(cell[3] for cell in group)
    through = [edge for edge in horizontal if top - _SNAP <= edge["top"] <= bottom + _SNAP]
    through = [edge for edge in through if edge["x0"] < x1 and edge["x1"] > x0]
    beyond = [edge for edge in through if edge["x0"] < x0 - _SNAP or edge["x1"] > x1 + _SNAP]
    return len(beyond) >= 2


def _rule_edges(page) -> list[dict]:
    """The page's straight horizontal and vertical path segments (rules, box sides), as
    pdfplumber edge records in page space with y negated."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    edges: list[dict] = []

    def add(start: tuple[float, float], end: tuple[float, float]) -> None:
        (x0, y0), (x1, y1) = start, end
        if abs(y1 - y0) < 0.5 and abs(x1 - x0) >= 1:
            left, right = sorted((x0, x1))
            edges.append(
                {
                    "x0": left,
                    "x1": right,
                    "top": -y0,
                    "bottom": -y0,
                    "width": right - left,
                    "orientation": "h",
                }
            )
        elif abs(x1 - x0) < 0.5 and abs(y1 - y0) >= 1:
            top, bottom = sorted((-y0, -y1))
            edges.append(
                {"x0": x0, "x1": x0, "top": top, "bottom": bottom, "height": bottom - top, "orientation": "v"}
            )

    def walk(count: int, get, parent, matrix, depth: int) -> None:
        for index in range(count):
            obj = get(parent, index)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind not in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_FORM):
                continue
            raw = pdfium_c.FS_MATRIX()
            if not pdfium_c.FPDFPageObj_GetMatrix(obj, raw):
                continue
            combined = pdfium.PdfMatrix.from_raw(raw).multiply(matrix)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                if depth < 3:
                    count_inside = pdfium_c.FPDFFormObj_CountObjects(obj)
                    walk(count_inside, pdfium_c.FPDFFormObj_GetObject, obj, combined, depth + 1)
                continue
            first = previous = None
            x, y = ctypes.c_float(), ctypes.c_float()
            for segment_index in range(pdfium_c.FPDFPath_CountSegments(obj)):
                segment = pdfium_c.FPDFPath_GetPathSegment(obj, segment_index)
                if not pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
                    continue
                point = combined.on_point(x.value, y.value)
                segment_type = pdfium_c.FPDFPathSegment_GetType(segment)
                if segment_type == pdfium_c.FPDF_SEGMENT_MOVETO:
                    first = point
                elif segment_type == pdfium_c.FPDF_SEGMENT_LINETO and previous is not None:
                    add(previous, point)
                previous = point
                if pdfium_c.FPDFPathSegment_GetClose(segment) and first is not None:
                    add(point, first)
                    previous = first

    walk(pdfium_c.FPDFPage_CountObjects(page), pdfium_c.FPDFPage_GetObject, page, pdfium.PdfMatrix(), 0)
    return edges


class TableFinder:
    """Finds tables page by page in one PDF. pdfplumber opens the PDF on the first question and
    parses a page only when asked about it; a PDF it cannot open is not asked again (`usable`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pdf = None
        self.usable = True

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    def __enter__(self) -> TableFinder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def tables(self, number: int) -> list[PdfTable]:
        """The tables of page `number` (1-based), top to bottom. A rotated page gives none:
        pdfminer's coordinates are then turned while pypdfium2's are not."""
        if self._pdf is None:
            import pdfplumber

            self.usable = False  # until it opens
            self._pdf = pdfplumber.open(io.BytesIO(self._data))
            self.usable = True
        page = self._pdf.pages[number - 1]
        if page.rotation:
            return []
        found = []
        try:
            for candidate in page.find_tables():
                table = _table(page, candidate)
                if table is not None and not any(_overlap(table.bbox, other.bbox) for other in found):
                    found.append(table)
        finally:
            page.close()  # drops the parsed objects: a long document would hold every page's
        return sorted(found, key=lambda table: -table.bbox[3])


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _table(page: pdfplumber.page.Page, candidate) -> PdfTable | None:
    """The candidate rebuilt with its outer edges, as rows of text, or None if not a table."""
    x0, top, x1, bottom = candidate.bbox
    crossing = [
        edge
        for edge in page.horizontal_edges
        if top - _SNAP <= edge["top"] <= bottom + _SNAP and edge["x0"] < x1 and edge["x1"] > x0
    ]
    # the ends at least two rules reach (a table's rules share them; one stray rule across the
    # page, a section divider at the table's top, would otherwise widen it over the next column)
    starts = sorted(edge["x0"] for edge in crossing)
    ends = sorted((edge["x1"] for edge in crossing), reverse=True)
    left = min(x0, starts[1]) if len(starts) >= 2 else x0
    right = max(x1, ends[1]) if len(ends) >= 2 else x1
    if left < x0 - _SNAP or right > x1 + _SNAP:
        page_x0, page_top, page_x1, page_bottom = page.bbox
        region = page.crop(
            (
                max(page_x0, left - _SNAP),
                max(page_top, top - _SNAP),
                min(page_x1, right + _SNAP),
                min(page_bottom, bottom + _SNAP),
            )
        )
        settings = {"explicit_vertical_lines": [left, right]}
        rebuilt = [table for table in region.find_tables(settings) if _overlap(table.bbox, candidate.bbox)]
        if rebuilt:
            candidate = max(rebuilt, key=lambda table: len(table.cells))
    rows = _rows(candidate)
    if rows is None:
        return None
    x0, top, x1, bottom = candidate.bbox
    # pdfplumber measures y down from the media box's height (its x is pdfium's), whatever the
    # media box's origin: a page whose media box starts below 0 or right of 0 is checked by tests
    height = page.mediabox[3] - page.mediabox[1]
    bbox = (x0, height - bottom, x1, height - top)
    return PdfTable(bbox, rows)


def _positions(values) -> list[float]:
    """Sorted distinct coordinates, those closer than `_SNAP` merged."""
    merged: list[float] = []
    for value in sorted(values):
        if not merged or value - merged[-1] > _SNAP:
            merged.append(value)
    return merged


def _index(positions: list[float], value: float) -> int:
    return min(range(len(positions)), key=lambda i: abs(positions[i] - value))


@dataclass
class _Cell:
    row: int
    end_row: int  # exclusive
    column: int
    end_column: int  # exclusive
    text: str


def _rows(table) -> list[list[str]] | None:
    """Header row then data rows, or None when the cells do not look like a table."""
    xs = _positions([cell[0] for cell in table.cells] + [cell[2] for cell in table.cells])
    ys = _positions([cell[1] for cell in table.cells] + [cell[3] for cell in table.cells])
    if len(xs) < MIN_COLUMNS + 1 or len(ys) < MIN_ROWS + 1:
        return None
    texts = {}
    for row, text_row in zip(table.rows, table.extract(), strict=True):
        for cell, text in zip(row.cells, text_row, strict=True):
            if cell is not None:
                texts[cell] = " ".join((text or "").split())
    cells = [
        _Cell(_index(ys, c[1]), _index(ys, c[3]), _index(xs, c[0]), _index(xs, c[2]), texts.get(c, ""))
        for c in table.cells
    ]
    cells = [cell for cell in cells if cell.end_row > cell.row and cell.end_column > cell.column]
    if sum(1 for cell in cells if cell.text) < MIN_FILLED_SHARE * len(cells):
        return None
    row_count, column_count = len(ys) - 1, len(xs) - 1
    header_rows = _header_rows(cells, row_count)
    header = [[] for _ in range(column_count)]
    body = [[""] * column_count for _ in range(row_count - header_rows)]
    for cell in sorted(cells, key=lambda cell: (cell.row, cell.column)):
        if cell.row < header_rows:  # a header cell names every column under it
            for column in range(cell.column, cell.end_column):
                if cell.text and cell.text not in header[column]:
                    header[column].append(cell.text)
        else:  # a data cell spanning rows belongs to each of them; spanning columns, to its first
            for row in range(cell.row, cell.end_row):
                body[row - header_rows][cell.column] = cell.text
    rows = [[" ".join(names) for names in header], *body]
    filled_columns = [column for column in range(column_count) if any(row[column] for row in rows)]
    rows = [[row[column] for column in filled_columns] for row in rows]
    rows = [row for row in rows if any(row)]
    if len(filled_columns) < MIN_COLUMNS or len(rows) < MIN_ROWS:
        return None
    return rows


def _header_rows(cells: list[_Cell], row_count: int) -> int:
    """How many of the first rows are header: the first row, the rows its cells reach down to, and
    the row under a header cell spanning columns (its sub-headers), until that settles. At least
    one row is left for data."""
    header = 1
    while True:
        reach = header
        for cell in cells:
            if cell.row < header:
                reach = max(reach, cell.end_row)
                if cell.end_row == header and cell.end_column - cell.column > 1:
                    reach = max(reach, header + 1)
        reach = min(reach, row_count - 1)
        if reach <= header:
            return max(1, min(header, row_count - 1))
        header = reach
