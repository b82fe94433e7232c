"""Contents and index pages are left out of the index, so they cannot outrank the content itself."""

from __future__ import annotations

import pytest

from embedhub.kb.ingest import Ingestor
from embedhub.kb.loaders.pdf import PdfLoader, is_navigation_page, without_navigation
from embedhub.kb.search import Searcher
from tests.conftest import shared_data
from tests.kb.conftest import make_pdf

CONTENTS = "\n".join(
    ["Contents"]
    + [
        f"{number} {title} {'.' * 20} {page}"
        for number, title, page in [
            ("1", "Introduction to row permissions", 3),
            ("2", "What is a column mask", 4),
            ("2.1", "Creating a column mask", 5),
            ("2.2", "Column mask examples", 6),
            ("3", "Auditing column mask and row permission use", 8),
            ("4", "Column mask performance", 9),
        ]
    ]
)
INDEX = "\n".join(
    ["Index", "audit policy, 8", "column access control, 4-6", "column mask, 4, 5, 6, 9",
     "CREATE MASK, 5", "row permission, 3, 8", "security administrator, 3"]
)  # fmt: skip
FIGURES = "\n".join(
    ["Quarterly revenue by region", "North 4210", "South 1170", "East 3905", "West 2277", "Central 860",
     "Total 12422"]
)  # fmt: skip
DEFINITION = (
    "A column mask is a rule that decides what value a user sees in a column: the database returns "
    "the masked expression instead of the stored value when the user is not authorised to see it."
)


@pytest.mark.parametrize("text", [CONTENTS, INDEX, CONTENTS.replace("." * 20, "")])
def test_contents_and_index_pages_are_recognised(text):
    assert is_navigation_page(text)
    assert without_navigation(text) == ""


@pytest.mark.parametrize("text", [FIGURES, DEFINITION, "Short page\n1\n2\n3"])
def test_content_pages_are_kept(text):
    assert not is_navigation_page(text)
    assert without_navigation(text) == text


def test_leader_lines_inside_a_content_page_are_dropped():
    page = "Chapter overview\n" + "\n".join(CONTENTS.split("\n")[1:4]) + "\n" + DEFINITION
    kept = without_navigation(page)
    assert "....." not in kept and DEFINITION in kept and kept.startswith("Chapter overview")


def test_definition_outranks_the_contents_page(collection, tiny_encoder, tmp_path):
    pdf = make_pdf(
        tmp_path / "redbook.pdf",
        [CONTENTS, "Row permissions restrict which rows a user can read.", DEFINITION, INDEX],
    )
    document = PdfLoader().load(pdf, pdf.read_bytes())
    assert {block.page for block in document.blocks} == {2, 3} and document.pages == 4
    Ingestor(collection, tiny_encoder).ingest([pdf])
    results = Searcher(collection, tiny_encoder).search("what is a column mask", k=5, mode="lexical")
    assert results[0].page_start == 3
    assert all(result.page_start in (2, 3) for result in results)


def test_a_pdf_of_only_contents_is_still_indexed(tmp_path):
    pdf = make_pdf(tmp_path / "toc.pdf", [CONTENTS])
    document = PdfLoader().load(pdf, pdf.read_bytes())
    assert "column mask" in document.text


def test_no_real_page_is_taken_for_navigation():
    """Every page of the real PDF fixtures (papers, a handbook, tables, code) stays whole."""
    import pypdfium2 as pdfium

    folder = shared_data("pdf-docx-fixtures", "pdf")
    checked = 0
    for path in sorted(folder.glob("*.pdf")):
        pdf = pdfium.PdfDocument(str(path))
        try:
            for page in pdf:
                text = page.get_textpage().get_text_bounded().replace("\r\n", "\n")
                assert without_navigation(text) == text, f"{path.name}: a content page was dropped"
                checked += 1
        finally:
            pdf.close()
    assert checked >= 10
