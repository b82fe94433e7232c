"""PDF ruled tables are table blocks (header row, then data rows) in their place between the page's
text, never also in the page text; pages without one come out as plain page text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from embedhub.kb.chunking import ChunkingOptions, chunk_document, chunk_kind
from embedhub.kb.loaders import load_file
from embedhub.kb.loaders.base import pipe_table
from tests.conftest import shared_data
from tests.kb.conftest import make_pdf, make_ruled_table_pdf

PRICES = [
    ["Part", "Supplier", "Price"],
    ["bolt M6", "Acme", "0.40"],
    ["washer", "Brico", "0.05"],
    ["hinge", "Acme", "3.10"],
]


@pytest.mark.parametrize("open_sides", [False, True], ids=["boxed", "open-sides"])
def test_ruled_table_is_a_table_block_between_the_text_above_and_below(tmp_path, open_sides):
    path = make_ruled_table_pdf(
        tmp_path / "prices.pdf",
        PRICES,
        above="The parts bought this year are listed below.",
        below="Prices are in euros, without tax.",
        open_sides=open_sides,
    )
    document = load_file(path)
    assert [(block.kind, block.page) for block in document.blocks] == [
        ("paragraph", 1),
        ("table", 1),
        ("paragraph", 1),
    ]
    above, table, below = document.blocks
    assert table.text == pipe_table(PRICES)
    assert above.text == "The parts bought this year are listed below."
    assert below.text == "Prices are in euros, without tax."


def test_a_grid_with_empty_cells_is_not_a_table(tmp_path):
    """A drawing's boxes, or a form's empty grid: the page is its text, as without the grid."""
    grid = [["", "", ""], ["", "", ""], ["", "", "x"]]
    path = make_ruled_table_pdf(tmp_path / "grid.pdf", grid, above="A form to fill in by hand.")
    document = load_file(path)
    assert [block.kind for block in document.blocks] == ["paragraph"]
    assert document.blocks[0].text.startswith("A form to fill in by hand.")


def test_a_page_without_rules_is_unchanged(tmp_path):
    path = make_pdf(tmp_path / "plain.pdf", ["Part Supplier Price\nbolt M6 Acme 0.40\nwasher Brico 0.05"])
    document = load_file(path)
    assert [block.kind for block in document.blocks] == ["paragraph"]
    assert document.blocks[0].text == "Part Supplier Price\nbolt M6 Acme 0.40\nwasher Brico 0.05"


def _groundtruth_table(path: Path) -> list[list[str]]:
    """The rows of the one pipe table in a `.groundtruth.md` (its separator line left out)."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [row for row in rows if not all(re.fullmatch(r"-+", cell) for cell in row)]


def test_real_paper_table_has_its_eight_columns_spanning_header_and_four_rows():
    """OTSL paper, Table 1: vertical rules between columns only, "TEDs" spanning three columns
    over "simple", "complex", "all", and two-line cells ("OTSL" over "HTML")."""
    path = shared_data("pdf-docx-fixtures", "pdf", "2305.03393v1-pg9.pdf")
    truth = _groundtruth_table(path.with_name("2305.03393v1-pg9.groundtruth.md"))
    document = load_file(path)
    (table,) = [block for block in document.blocks if block.kind == "table"]
    assert table.page == 1
    lines = table.text.split("\n")
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "# enc-layers",
        "# dec-layers",
        "Language",
        "TEDs simple",
        "TEDs complex",
        "TEDs all",
        "mAP (0.75)",
        "Inference time (secs)",
    ]
    # the ground truth writes the two header rows apart; each column's name is their two cells joined
    assert header == [
        top if top == below else f"{top} {below}" for top, below in zip(truth[0], truth[1], strict=True)
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert rows == truth[2:] and len(rows) == 4
    # the table is not also in the page text
    text = "\n".join(block.text for block in document.blocks if block.kind != "table")
    assert "0.965" not in text and "0.969" not in text and "(secs)" not in text
    assert "5.1 Hyper Parameter Optimization" in text and "5.2 Quantitative Results" in text


def test_real_fixtures_without_ruled_tables_have_no_table_blocks():
    """A code listing in a box, a technical drawing's boxes, plain pages: no table, page text only."""
    folder = shared_data("pdf-docx-fixtures", "pdf")
    others = [path for path in sorted(folder.glob("*.pdf")) if not path.name.startswith("2305.03393")]
    assert len(others) >= 4
    for path in others:
        document = load_file(path)
        assert {block.kind for block in document.blocks} == {"paragraph"}, path.name


def test_long_pdf_table_is_chunked_by_rows_under_its_header(tmp_path, tiny_encoder):
    rows = [["Part", "Supplier", "Price"]] + [
        [f"part-{i:02d}", f"supplier {i % 7}", f"{i * 3}.50"] for i in range(50)
    ]
    path = make_ruled_table_pdf(tmp_path / "catalogue.pdf", rows, above="Catalogue of parts.", row_height=12)
    document = load_file(path)

    def count(texts):
        return [len(ids) for ids in tiny_encoder.content_ids(list(texts))]

    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=120, overlap_tokens=16))
    tables = [chunk for chunk in chunks if chunk_kind(chunk.text) == "table"]
    assert len(tables) > 3
    found = []
    for chunk in tables:
        assert chunk.text.startswith("| Part | Supplier | Price |\n| --- | --- | --- |\n")
        found += chunk.text.split("\n")[2:]
    assert found == [f"| part-{i:02d} | supplier {i % 7} | {i * 3}.50 |" for i in range(50)]  # each row once


@pytest.mark.parametrize("media_box", [(0, -100, 612, 692), (30, 200, 600, 792)], ids=["below-0", "offset"])
def test_table_found_where_pdfium_reads_its_text_on_a_media_box_not_at_the_origin(tmp_path, media_box):
    """pdfplumber and pypdfium2 measure from different corners: the table's words must leave the page
    text however the media box is placed (a table in the text twice is what a mismatch looks like)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import RectangleObject

    source = make_ruled_table_pdf(tmp_path / "source.pdf", PRICES, above="Parts.", below="In euros.")
    page = PdfReader(source).pages[0]
    page.mediabox = RectangleObject(media_box)
    writer = PdfWriter()
    writer.add_page(page)
    path = tmp_path / "moved.pdf"
    writer.write(path)
    document = load_file(path)
    assert [(block.kind, block.text) for block in document.blocks] == [
        ("paragraph", "Parts."),
        ("table", pipe_table(PRICES)),
        ("paragraph", "In euros."),
    ]


def test_a_table_finder_failure_keeps_the_page_text_and_says_so(tmp_path, monkeypatch):
    from embedhub.kb.loaders import pdf_tables

    def broken(self, number):
        raise ValueError("bad xref")

    monkeypatch.setattr(pdf_tables.TableFinder, "tables", broken)
    path = make_ruled_table_pdf(tmp_path / "prices.pdf", PRICES, above="Parts.")
    document = load_file(path)
    assert [block.kind for block in document.blocks] == ["paragraph"]
    assert "washer Brico 0.05" in document.blocks[0].text
    assert document.warnings == ["page 1: tables not read (ValueError: bad xref)"]


def test_a_rule_across_the_page_does_not_widen_an_open_sided_table_over_the_text_beside_it(tmp_path):
    side_note = "BT /F1 10 Tf 480 660 Td (Side note) Tj ET"
    divider = "20 700 m 590 700 l S"  # a section divider running along the table's top rule
    path = make_ruled_table_pdf(tmp_path / "divided.pdf", PRICES, open_sides=True, extra=[side_note, divider])
    document = load_file(path)
    (table,) = [block for block in document.blocks if block.kind == "table"]
    assert table.text == pipe_table(PRICES)
    assert "Side note" in "\n".join(block.text for block in document.blocks if block.kind == "paragraph")


def test_an_open_sided_table_of_a_header_and_one_row_is_found(tmp_path):
    """Its rules make a single column of two cells between the inner vertical rules; the rules
    running on past them say there is more table on each side."""
    path = make_ruled_table_pdf(tmp_path / "one.pdf", PRICES[:2], above="One part.", open_sides=True)
    document = load_file(path)
    assert [(block.kind, block.text) for block in document.blocks] == [
        ("paragraph", "One part."),
        ("table", pipe_table(PRICES[:2])),
    ]


def test_a_rotated_page_keeps_its_table_as_page_text_once(tmp_path):
    from pypdf import PdfReader, PdfWriter

    source = make_ruled_table_pdf(tmp_path / "source.pdf", PRICES, above="Parts.")
    writer = PdfWriter()
    writer.add_page(PdfReader(source).pages[0].rotate(90))
    path = tmp_path / "rotated.pdf"
    writer.write(path)
    document = load_file(path)
    assert [block.kind for block in document.blocks] == ["paragraph"]
    assert document.text.count("Brico") == 1
