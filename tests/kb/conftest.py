"""Knowledge-base fixtures: a fresh KnowledgeBase per test, and small files of every format."""

from __future__ import annotations

import pytest

from embedhub.kb.collection import KnowledgeBase


@pytest.fixture
def knowledge_base(settings, tmp_path):
    kb = KnowledgeBase(settings.model_copy(update={"home": tmp_path / "home"}))
    yield kb
    kb.close()


@pytest.fixture
def collection(knowledge_base, tiny_encoder, tiny_model_dir):
    return knowledge_base.create(
        "docs", tiny_encoder, model_reference=str(tiny_model_dir), chunk_tokens=64, chunk_overlap=8
    )


def make_docx(path, title="Report", sections=(("Intro", ["First paragraph.", "Second paragraph."]),)):
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.add_paragraph("a list item", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "name", "value"
    table.cell(1, 0).text, table.cell(1, 1).text = "alpha", "42"
    document.save(str(path))
    return path


def make_pdf(path, pages, encrypt: str | None = None):
    """A real PDF with one text line block per page (pypdf writes it; no PDF is committed)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        stream = DecodedStreamObject()
        lines = [line[i : i + 80] for line in text.split("\n") for i in range(0, max(len(line), 1), 80)]
        commands = ["BT", "/F1 11 Tf", "14 TL", "50 740 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            commands.append(f"({escaped}) Tj T*")
        commands.append("ET")
        stream.set_data("\n".join(commands).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
        )
    if encrypt:
        writer.encrypt(encrypt)
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def make_ruled_table_pdf(
    path, rows, above="", below="", open_sides=False, row_height=18.0, column_width=120.0, extra=()
):
    """A one-page PDF: the `above` line, a table of `rows` (header first) drawn as a grid of rules
    with each cell's text inside, then the `below` line. `open_sides` leaves out the outer vertical
    rules (rules between columns only, as many papers draw them). The table's top left corner is
    at (60, 700) in PDF points; `extra` content stream operators are drawn after it."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    def text(x: float, y: float, value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"BT /F1 10 Tf {x:.1f} {y:.1f} Td ({escaped}) Tj ET"

    columns = max(len(row) for row in rows)
    left, top = 60.0, 700.0
    right, bottom = left + columns * column_width, top - len(rows) * row_height
    commands = ["0.5 w"]
    if above:
        commands.append(text(left, top + 20, above))
    for index in range(len(rows) + 1):
        y = top - index * row_height
        commands.append(f"{left} {y} m {right} {y} l S")
    for index in range(columns + 1):
        if open_sides and index in (0, columns):
            continue
        x = left + index * column_width
        commands.append(f"{x} {top} m {x} {bottom} l S")
    for row_index, row in enumerate(rows):
        for column_index, value in enumerate(row):
            y = top - (row_index + 1) * row_height + 5
            commands.append(text(left + column_index * column_width + 4, y, value))
    if below:
        commands.append(text(left, bottom - 24, below))
    commands.extend(extra)
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    stream = DecodedStreamObject()
    stream.set_data("\n".join(commands).encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


@pytest.fixture(autouse=True)
def _wide_cli_output(monkeypatch):
    """rich wraps CLI output at COLUMNS (80 without a terminal): a long temporary path (an xdist
    worker's popen-gwN folder, a long user name) must not split the file names tests look for."""
    monkeypatch.setenv("COLUMNS", "200")
