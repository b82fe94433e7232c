"""Chunks hold body text (no heading-only or sliver chunks) and tables are cited whole or by rows
under their header row; the chunker version is recorded and older chunks are reported."""

from __future__ import annotations

import sqlite3

import pytest

from embedhub.kb.chunking import CHUNKER_VERSION, MIN_BODY_CHARS, ChunkingOptions, chunk_document, chunk_kind
from embedhub.kb.ingest import Ingestor
from embedhub.kb.loaders import load_file
from embedhub.kb.loaders.base import table_header
from embedhub.kb.search import Searcher
from tests.conftest import shared_data


@pytest.fixture
def count(tiny_encoder):
    def count(texts):
        return [len(ids) for ids in tiny_encoder.content_ids(list(texts))]

    return count


def body_chars(chunk) -> int:
    """Characters of a chunk's text that are not its heading lines."""
    headings = set(chunk.heading_path)
    return sum(len(line.strip()) for line in chunk.text.split("\n") if line.strip() not in headings)


def assert_spans(document, chunks) -> None:
    """Every chunk's text is its span of the document text, or (a later piece of a split table)
    the repeated header row, a newline, then its span."""
    for chunk in chunks:
        span = document.text[chunk.char_start : chunk.char_end]
        header = table_header(chunk.text)
        assert chunk.text == span or (header and chunk.text == header + "\n" + span), chunk


def coffee_docx(path):
    import docx

    document = docx.Document()
    document.add_heading("Office Coffee Policy", level=0)  # the Title style: a title with no body
    document.add_heading("Beans", level=1)
    document.add_heading("Storage", level=2)  # a heading directly followed by a heading
    document.add_paragraph("Beans are kept in the airtight tin on the second shelf.")
    document.add_heading("Cleaning", level=1)
    table = document.add_table(rows=3, cols=3)
    for row, values in enumerate(
        [("Day", "Task", "Machine"), ("Friday", "Descale", "Espresso"), ("Daily", "Rinse", "Drip")]
    ):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    document.add_paragraph("The espresso machine is descaled every Friday by the office manager.")
    document.save(str(path))
    return path


def test_docx_title_and_heading_then_heading_are_heading_paths_not_chunks(tmp_path, count):
    document = load_file(coffee_docx(tmp_path / "coffee.docx"))
    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=200, overlap_tokens=16))
    assert all(body_chars(c) >= MIN_BODY_CHARS for c in chunks), [c.text for c in chunks]
    storage = next(c for c in chunks if "airtight tin" in c.text)
    assert storage.heading_path == ("Office Coffee Policy", "Beans", "Storage")
    assert storage.text.startswith("Office Coffee Policy")  # the headings stay in the text, ahead of the body
    table = next(c for c in chunks if chunk_kind(c.text) == "table")
    rows = [
        "| Day | Task | Machine |",
        "| --- | --- | --- |",
        "| Friday | Descale | Espresso |",
        "| Daily | Rinse | Drip |",
    ]
    assert table.text == "\n".join(rows)
    assert table.heading_path == ("Cleaning",)
    assert chunk_kind(next(c for c in chunks if "descaled every Friday" in c.text).text) == "text"
    assert_spans(document, chunks)


def long_table_markdown(rows: int = 60) -> str:
    lines = ["| Part | Supplier | Price |", "|:-----|---|--:|"]
    lines += [f"| part-{i:02d} | supplier {i % 7} | {i * 3}.50 |" for i in range(rows)]
    return (
        "# Catalogue\n\nIntroduction to the catalogue of parts, kept by purchasing.\n\n"
        "## Hardware\n\n### Fasteners\n\n" + "\n".join(lines) + "\n\nPrices are in euros, without tax.\n"
    )


def test_markdown_table_is_split_by_rows_each_piece_starting_with_the_header(tmp_path, count):
    path = tmp_path / "catalogue.md"
    path.write_text(long_table_markdown())
    document = load_file(path)
    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=120, overlap_tokens=16))
    tables = [c for c in chunks if chunk_kind(c.text) == "table"]
    assert len(tables) > 3
    header = "| Part | Supplier | Price |\n| --- | --- | --- |"
    rows = []
    for chunk in tables:
        assert chunk.text.startswith(header + "\n")
        assert chunk.heading_path == ("Catalogue", "Hardware", "Fasteners")
        assert count([chunk.text])[0] <= 120 + 2
        rows += chunk.text.split("\n")[2:]
    assert rows == [f"| part-{i:02d} | supplier {i % 7} | {i * 3}.50 |" for i in range(60)]  # each row once
    assert_spans(document, chunks)
    after = next(c for c in chunks if "euros" in c.text)  # the text after the table is not in a table chunk
    assert (after.text, after.heading_path) == ("Prices are in euros, without tax.", tables[0].heading_path)


def test_a_table_that_fits_is_one_chunk_and_a_short_line_before_it_is_its_caption(tmp_path, count):
    path = tmp_path / "prices.md"
    path.write_text(
        "# Prices\n\nPrice list:\n\n| Item | Price |\n|---|---|\n| Espresso | 2.00 |\n| Latte | 2.80 |\n"
    )
    document = load_file(path)
    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=200, overlap_tokens=16))
    (table,) = [c for c in chunks if chunk_kind(c.text) == "table"]
    assert table.text == "| Item | Price |\n| --- | --- |\n| Espresso | 2.00 |\n| Latte | 2.80 |"
    assert table.heading_path == ("Prices", "Price list:")
    assert len(chunks) == 1
    assert_spans(document, chunks)


def test_html_table_is_a_pipe_table_block(tmp_path, count):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><body><main><h1>Rota</h1><table><tr><th>Day</th><th>Who | team</th></tr>"
        "<tr><td>Monday</td><td>Ana<br>and Bo</td></tr><tr><td>Tuesday</td></tr></table></main></body></html>"
    )
    document = load_file(path)
    (table,) = [b for b in document.blocks if b.kind == "table"]
    assert table.text == "| Day | Who \\| team |\n| --- | --- |\n| Monday | Ana and Bo |\n| Tuesday |  |"
    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=200, overlap_tokens=16))
    assert [c.heading_path for c in chunks if chunk_kind(c.text) == "table"] == [("Rota",)]


def test_a_trailing_sliver_joins_the_section_before_it(tmp_path, count):
    path = tmp_path / "guide.md"
    path.write_text(
        "# Guide\n\n## Details\n\nThe long explanation of how the details work lives here.\n\n"
        "## Notes\n\nSee above.\n"
    )
    document = load_file(path)
    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=200, overlap_tokens=16))
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("Guide", "Details")  # the larger section is the citation
    assert chunks[0].text.endswith("Notes\n\nSee above.")
    assert_spans(document, chunks)


FIXTURE_FOLDERS = ("pdf-docx-fixtures", "long-docs-en", "long-docs-zh")


@pytest.mark.parametrize("folder", FIXTURE_FOLDERS)
def test_no_fixture_has_a_heading_only_or_sliver_chunk(folder, count):
    root = shared_data(folder)
    paths = sorted(p for p in root.rglob("*") if p.suffix in (".pdf", ".docx", ".md", ".txt"))
    assert paths
    for path in paths:
        document = load_file(path)
        chunks = chunk_document(document, count, ChunkingOptions(max_tokens=400, overlap_tokens=48))
        slivers = [c.text[:40] for c in chunks if body_chars(c) < MIN_BODY_CHARS]
        assert not slivers, f"{path.name}: {slivers}"
        assert_spans(document, chunks)


def test_docx_tables_inside_content_controls_are_read():
    path = shared_data("pdf-docx-fixtures", "docx", "docx_rich_tables_01.docx")
    document = load_file(path)
    tables = [b for b in document.blocks if b.kind == "table"]
    assert len(tables) == 2
    assert tables[0].text.startswith("| Feature | Action Needed | Comment/Links |\n| --- | --- | --- |\n")


def test_table_hits_say_their_kind_and_the_chunker_version_is_recorded(collection, tiny_encoder, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    coffee_docx(folder / "coffee.docx")
    Ingestor(collection, tiny_encoder).ingest([folder])
    hits = Searcher(collection, tiny_encoder).search("Descale Espresso", k=5, mode="lexical")
    kinds = {hit.to_dict()["kind"] for hit in hits}
    assert kinds == {"table", "text"}
    assert next(h for h in hits if h.kind == "table").text.startswith("| Day | Task | Machine |")
    (record,) = collection.manifest.documents()
    assert record.chunker_version == CHUNKER_VERSION
    info = collection.info()
    assert (info["chunker_version"], info["outdated_chunking"], info["rechunk"]) == (CHUNKER_VERSION, 0, None)


def test_documents_of_an_older_chunker_are_reported_and_rechunked_by_adding_again(
    collection, tiny_encoder, tmp_path
):
    folder = tmp_path / "my docs"
    folder.mkdir()
    coffee_docx(folder / "coffee.docx")
    (folder / "other.md").write_text("# Other\n\nA second document with enough body text to be a chunk.\n")
    Ingestor(collection, tiny_encoder).ingest([folder])
    # as a collection chunked before versions were recorded: NULL reads as version 1
    with sqlite3.connect(collection.folder / "manifest.sqlite") as db:
        db.execute("UPDATE documents SET chunker_version = NULL WHERE path LIKE '%coffee.docx'")
    info = collection.info()
    assert info["outdated_chunking"] == 1
    assert info["rechunk"] == (
        f"1 document(s) were chunked by an older chunker (this one is v{CHUNKER_VERSION}); "
        f"re-chunk them with: embedhub kb add docs '{folder}'"
    )
    report = Ingestor(collection, tiny_encoder).ingest([folder])
    assert (report.count("updated"), report.count("skipped")) == (1, 1)
    assert collection.info()["outdated_chunking"] == 0
