"""OCR of scanned PDF pages and image files through the real ingest path (kb/ocr.py).

The scans are drawn here with PIL (text on a white page, saved as an image-only PDF, a PNG and a
two-frame TIFF), so the recognised text can be checked against what was drawn: key words must be
present (OCR may differ in a character), pages must be the ones the words were drawn on."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
from PIL import Image, ImageDraw, ImageFont

from embedhub.errors import ConfigurationError
from embedhub.kb.ingest import Ingestor, document_id
from embedhub.kb.loaders import load_file
from embedhub.kb.loaders.pdf import has_text_layer
from embedhub.kb.ocr import (
    MAX_LETTERS_PER_SPACE,
    OcrEngine,
    OcrOptions,
    OcrTimeoutError,
    RapidOcrEngine,
    SpacingFallbackEngine,
    TesseractEngine,
    TextBox,
    get_ocr_engine,
    page_list,
    reading_order,
    run_together_share,
    spaces_dropped,
)
from tests.kb.conftest import make_pdf

ENGLISH = ("The lease ends on 31 March 2025.", "Rent is due monthly.")
CHINESE = ("中华人民共和国民法典", "民事主体的人身权利受法律保护。")


def _cjk_font_file() -> str | None:
    """A font with Chinese glyphs (fc-list: Noto Sans CJK Regular preferred, any other otherwise)."""
    if shutil.which("fc-list") is None:
        return None
    listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True).stdout
    files = sorted({line.split(":")[0].strip() for line in listed.splitlines() if line.strip()})
    preferred = [name for name in files if "Sans" in name and "Regular" in name]
    return (preferred or files or [None])[0]


@pytest.fixture(scope="module")
def font():
    path = _cjk_font_file()
    if path is None:
        pytest.skip("no CJK font to draw Chinese pages (make ocr-tools installs fonts-noto-cjk)")
    return ImageFont.truetype(path, 40)


@pytest.fixture(scope="module")
def rapidocr():
    reason = RapidOcrEngine().unavailable_reason()
    if reason:
        pytest.skip(f"{reason} (pip install 'embedhub[ocr]'; make install does it)")
    return OcrOptions("rapidocr")


def page(font, lines) -> Image.Image:
    """A scanned-looking page: black text on white, 40 px type (about 14 pt at 200 dpi)."""
    image = Image.new("L", (1100, 120 + 90 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((60, 60 + 90 * index), line, font=font, fill=0)
    return image


def scanned_pdf(path, images):
    images[0].save(path, "PDF", resolution=200, save_all=True, append_images=images[1:])
    return path


def test_a_scanned_pdf_and_a_png_are_read_through_ingest_with_pages_and_a_manifest_record(
    collection, tiny_encoder, tmp_path, font, rapidocr
):
    folder = tmp_path / "scans"
    folder.mkdir()
    scanned_pdf(folder / "lease.pdf", [page(font, ENGLISH), page(font, CHINESE)])
    page(font, [*CHINESE[:1], ENGLISH[0]]).save(folder / "note.png")
    report = Ingestor(collection, tiny_encoder, ocr=rapidocr).ingest([folder])
    assert report.count("added") == 2, report.summary()
    pdf = collection.manifest.get(document_id(folder / "lease.pdf"))
    png = collection.manifest.get(document_id(folder / "note.png"))
    assert (pdf.file_type, pdf.pages, pdf.ocr_engine, pdf.ocr_pages, pdf.warning) == (
        "pdf",
        2,
        "rapidocr",
        [1, 2],
        None,
    )
    assert (png.file_type, png.pages, png.ocr_engine, png.ocr_pages) == ("image", 1, "rapidocr", [1])
    rows = collection.store.rows_of(pdf.doc_id)
    english = " ".join(r.text for r in rows if r.page_start == 1)
    chinese = "".join(r.text for r in rows if r.page_start == 2)
    assert "lease" in english and "2025" in english and "monthly" in english
    assert "民法典" in chinese and "法律保护" in chinese
    note = " ".join(r.text for r in collection.store.rows_of(png.doc_id))
    assert "民法典" in note and "lease" in note


def test_a_multi_page_tiff_cites_its_frames_as_pages(tmp_path, font, rapidocr):
    path = tmp_path / "fax.tiff"
    first, second = page(font, ENGLISH[:1]), page(font, CHINESE[:1])
    first.save(path, save_all=True, append_images=[second])
    document = load_file(path, ocr=rapidocr)
    assert (document.pages, document.ocr_pages) == (2, [1, 2])
    by_page = {block.page: block.text for block in document.blocks}
    assert "lease" in by_page[1] and "民法典" in by_page[2]


def test_a_pdf_page_with_a_text_layer_keeps_it_and_only_the_scanned_page_is_read(tmp_path, font, rapidocr):
    text_pdf = make_pdf(tmp_path / "text.pdf", ["Photosynthesis turns light into chemical energy in plants."])
    scan = scanned_pdf(tmp_path / "scan.pdf", [page(font, ENGLISH)])
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(str(text_pdf))
    writer.append(str(scan))
    writer.write(str(tmp_path / "mixed.pdf"))
    document = load_file(tmp_path / "mixed.pdf", ocr=rapidocr)
    assert document.ocr_pages == [2]
    assert document.blocks[0].text.startswith("Photosynthesis turns light") and document.blocks[0].page == 1
    assert "lease" in " ".join(block.text for block in document.blocks if block.page == 2)


def test_with_ocr_off_a_scan_fails_saying_it_needs_ocr_and_a_mixed_pdf_warns(
    collection, tiny_encoder, tmp_path, font
):
    folder = tmp_path / "scans"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", [page(font, ENGLISH)])
    page(font, ENGLISH).save(folder / "photo.png")
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(str(make_pdf(tmp_path / "text.pdf", ["Photosynthesis turns light into chemical energy."])))
    writer.append(str(folder / "scan.pdf"))
    writer.write(str(folder / "mixed.pdf"))
    report = Ingestor(collection, tiny_encoder, ocr=OcrOptions("none")).ingest([folder])
    summary = report.summary()
    assert (summary["added"], summary["failed"]) == (1, 2), summary
    for name in ("scan.pdf", "photo.png"):
        record = collection.manifest.get(document_id(folder / name))
        assert record.status == "failed"
        assert (
            "needs OCR: page(s) 1 have no text layer" in record.error and "EMBEDHUB_OCR=auto" in record.error
        )
    mixed = collection.manifest.get(document_id(folder / "mixed.pdf"))
    assert mixed.status == "done" and mixed.ocr_pages == [] and mixed.ocr_engine is None
    assert mixed.warning.startswith("needs OCR: page(s) 2 have no text layer")
    assert summary["warnings"] == [{"path": str(folder / "mixed.pdf"), "warning": mixed.warning}]


def test_no_engine_installed_names_the_install_commands(tmp_path, font, monkeypatch):
    monkeypatch.setattr(RapidOcrEngine, "unavailable_reason", lambda self: "the package is not installed")
    monkeypatch.setattr(TesseractEngine, "unavailable_reason", lambda self: "the program is not installed")
    page(font, ENGLISH).save(tmp_path / "photo.png")
    with pytest.raises(Exception, match="needs OCR") as raised:
        load_file(tmp_path / "photo.png", ocr=OcrOptions("auto"))
    assert "pip install 'embedhub[ocr]'" in str(raised.value)
    assert "apt-get install tesseract-ocr tesseract-ocr-chi-sim" in str(raised.value)


def test_the_page_cap_reads_the_first_pages_and_names_the_rest(tmp_path, font, rapidocr):
    pages = [page(font, [f"Section {n} of the contract."]) for n in (1, 2, 3)]
    scanned_pdf(tmp_path / "long.pdf", pages)
    options = OcrOptions("rapidocr", max_pages=1)
    document = load_file(tmp_path / "long.pdf", ocr=options)
    assert document.ocr_pages == [1] and "Section 1" in document.text and "Section 2" not in document.text
    assert document.warnings == [
        "OCR read 1 pages, the limit per document (EMBEDHUB_OCR_MAX_PAGES); page(s) 2-3 were not read: "
        "raise the limit to read them"
    ]


def test_a_page_over_the_time_limit_is_given_up_with_the_pages_not_read(tmp_path, font, monkeypatch):
    def too_slow(self, image, timeout):
        raise OcrTimeoutError(f"over the {timeout:g}-second limit per page")

    monkeypatch.setattr(RapidOcrEngine, "unavailable_reason", lambda self: None)
    monkeypatch.setattr(RapidOcrEngine, "read", too_slow)
    scanned_pdf(tmp_path / "slow.pdf", [page(font, ENGLISH), page(font, ENGLISH), page(font, ENGLISH)])
    with pytest.raises(Exception, match="no text found") as raised:
        load_file(tmp_path / "slow.pdf", ocr=OcrOptions("rapidocr", page_seconds=5))
    assert "OCR gave up on page 1 (over the 5-second limit per page, EMBEDHUB_OCR_PAGE_SECONDS); " in str(
        raised.value
    )
    assert "page(s) 2-3 were not read" in str(raised.value)


def test_tesseract_reads_english_and_chinese(tmp_path, font):
    engine = TesseractEngine()
    reason = engine.unavailable_reason()
    if reason:
        pytest.skip(f"{reason} (make ocr-tools installs it)")
    text = engine.read(page(font, [ENGLISH[0], CHINESE[0]]), 60)
    assert "lease" in text and "民法典" in text


def test_an_unknown_engine_lists_the_choices():
    with pytest.raises(ConfigurationError, match="choose one of: auto, none, rapidocr, tesseract"):
        OcrOptions("abbyy")


def test_the_text_layer_rule():
    letter = (612.0, 792.0)
    page_of_text = "The parties agree to the following terms and conditions. " * 20
    assert has_text_layer(page_of_text, letter, image_share=0.0)
    assert not has_text_layer("  12  ", letter, image_share=0.0)  # a page number only
    assert not has_text_layer(
        "Scanned by Acme Copier 2024-01-01", letter, image_share=0.95
    )  # a stamp on a scan
    assert has_text_layer(
        "Scanned by Acme Copier 2024-01-01", letter, image_share=0.0
    )  # a short digital page
    assert not has_text_layer("\ufffd\x01\x02" * 40 + "abc def ghi jkl mno pqr", letter, image_share=0.0)
    assert page_list([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"


def test_an_image_document_renders_its_frames_for_citations(tmp_path, font):
    from embedhub.kb.loaders.image import render_frame

    path = tmp_path / "fax.tiff"
    page(font, ENGLISH[:1]).save(path, save_all=True, append_images=[page(font, ENGLISH)])
    second = Image.open(io.BytesIO(render_frame(path, 2)))
    assert second.format == "PNG" and second.size == (1100, 120 + 90 * len(ENGLISH))


PROSE = (
    "We have chosen the PubTabNet data set to perform HPO, since it includes a highly diverse set of "
    "tables. Also we report TED scores separately for simple and complex tables (tables with cell "
    "spans). Results are presented in the table. It is evident that with OTSL, our model achieves the "
    "same TED score and slightly better mAP scores in comparison to HTML."
)
# rapidocr's reading of that page stored as JPEG in an image-only PDF (docs/retrieval.md)
SPACELESS = (
    "OptimizedTableTokenizationforTableStructureRecognition\n9\n\n"
    "ordertocomputetheTEDscore.Inferencetimingresultsforallexperiments\n"
    "wereobtainedfrom thesamemachineonasinglecorewithAMDEPYC7763\nCPU@2.45GHz.\n\n5.1\n"
    "HyperParameterOptimization\nWehave chosenthePubTabNetdata settoperformHPO,since itincludes a\n"
    "highlydiversesetof tables.AlsowereportTEDscoresseparatelyforsimple and\n"
    "complex tables (tables with cell spans).Results are presented in Table. It is\n"
    "evident thatwith OTSL,ourmodel achieves the sameTEDscore and slightly\n"
    "bettermAPscoresincomparisontoHTML.HoweverOTSLyieldsa2rspeed\nupintheinferenceruntimeover"
)


class ScriptedEngine(OcrEngine):
    def __init__(self, name: str, text: str) -> None:
        self.name, self.install, self.text, self.calls = name, "", text, 0

    def unavailable_reason(self):
        return None

    def read(self, image, timeout):
        self.calls += 1
        return self.text


def test_lost_word_spaces_are_told_from_english_chinese_and_short_text():
    assert not spaces_dropped(PROSE)
    assert spaces_dropped(SPACELESS)
    assert not spaces_dropped("民法典是新中国第一部以法典命名的法律。" * 20)
    assert not spaces_dropped("Wehavechosen thedataset")  # too little to judge


def test_a_page_is_read_again_when_a_quarter_of_its_lines_ran_together():
    """multi_page.pdf's JPEG pages averaged 6.7-9.7 letters per space, under any page-wide limit,
    while a quarter of their lines had lost every space; one odd line on a page is not enough."""
    spaced = "Word processors became a cornerstone of education, teaching students to write well."
    lost = "ToolslikeScrivenerallowedauthorstomanagelargeprojects,fromnovelstoscreenplays,"
    quarter = "\n".join([spaced, spaced, spaced, lost] * 4)
    assert len(re.findall("[A-Za-z]", quarter)) / (quarter.count(" ") + 1) < MAX_LETTERS_PER_SPACE
    assert run_together_share(quarter) > 0.2 and spaces_dropped(quarter)
    one_odd_line = "\n".join([spaced] * 30 + [lost])
    assert 0 < run_together_share(one_odd_line) < 0.05 and not spaces_dropped(one_odd_line)
    assert run_together_share("民法典是新中国第一部以法典命名的法律。" * 20) is None


def test_auto_reads_again_with_tesseract_where_rapidocr_lost_the_spaces():
    image = Image.new("L", (8, 8))
    spaced, lost = ScriptedEngine("rapidocr", PROSE), ScriptedEngine("rapidocr", SPACELESS)
    tesseract = ScriptedEngine("tesseract", PROSE.replace("HTML", "HTML5"))
    assert SpacingFallbackEngine(spaced, tesseract).read(image, 10) == PROSE and tesseract.calls == 0
    again = SpacingFallbackEngine(lost, tesseract).read(image, 10)
    assert again.endswith("HTML5.") and tesseract.calls == 1
    no_better = ScriptedEngine("tesseract", SPACELESS.upper())
    assert SpacingFallbackEngine(lost, no_better).read(image, 10) == SPACELESS  # keep the first reading
    assert SpacingFallbackEngine(lost, tesseract).name == "rapidocr+tesseract"


def test_auto_pairs_the_engines_when_both_are_installed():
    engines = [get_ocr_engine(name) for name in ("rapidocr", "tesseract")]
    if any(engine.unavailable_reason() for engine in engines):
        pytest.skip("needs both rapidocr (pip install 'embedhub[ocr]') and tesseract (make ocr-tools)")
    engine, _ = OcrOptions("auto").resolve()
    assert isinstance(engine, SpacingFallbackEngine) and engine.name == "rapidocr+tesseract"
    alone, _ = OcrOptions("rapidocr").resolve()
    assert alone.name == "rapidocr"


def _line(left, top, right, text):
    return TextBox(left, top, right, top + 30, text)


def test_two_columns_are_read_one_after_the_other_with_a_title_across_them():
    """rapidocr returns lines by height only: left, right, left, right (accuracy 0.57 on a real
    two-column page); reading order takes each column top to bottom, a title across both in place."""
    title = _line(200, 40, 1400, "Self-Locking Nuts and Where They Are Used")
    engine_order = [title]
    for row in range(5):
        engine_order += [
            _line(200, 100 + 40 * row, 860, f"left {row}"),
            _line(890, 100 + 40 * row, 1550, f"right {row}"),
        ]
    footer = _line(200, 400, 1500, "Figure 7-26. Self-locking nuts across the page.")
    below = [_line(200, 460 + 40 * row, 860, f"left {row + 5}") for row in range(3)]
    below += [_line(890, 460 + 40 * row, 1550, f"right {row + 5}") for row in range(3)]
    texts = [box.text for box in reading_order([*engine_order, footer, *sorted(below, key=lambda b: b.top)])]
    assert texts == [
        title.text,
        *(f"left {row}" for row in range(5)),
        *(f"right {row}" for row in range(5)),
        footer.text,
        *(f"left {row}" for row in range(5, 8)),
        *(f"right {row}" for row in range(5, 8)),
    ]


def test_one_column_and_tables_keep_the_engine_order():
    one_column = [_line(200, 100 + 40 * row, 1500 - 37 * row, f"line {row}") for row in range(8)]
    assert reading_order(one_column) == one_column
    # a table's cells have gaps between them, but cells are not columns of text: rows stay rows
    table = [
        _line(200 + 180 * column, 100 + 40 * row, 300 + 180 * column, f"{row}.{column}")
        for row in range(6)
        for column in range(6)
    ]
    assert reading_order(table) == table


def test_a_column_line_merged_with_a_label_beside_it_stays_in_its_column():
    """The detector joined "against the force of the spring to engage the threads of the" with a
    figure label to its right into one box across the gutter; the left column runs into and out of it."""
    left = [_line(200, 100 + 35 * row, 860, f"left {row}") for row in range(6)]
    right = [_line(890, 100 + 35 * row, 1550, f"right {row}") for row in range(4)]
    merged = _line(200, 100 + 35 * 6, 1450, "left 6 merged with a label")
    after = [_line(200, 100 + 35 * row, 860, f"left {row}") for row in range(7, 9)]
    boxes = sorted([*left, *right, merged, *after], key=lambda box: box.top)
    texts = [box.text for box in reading_order(boxes)]
    assert texts[:9] == [*(f"left {row}" for row in range(6)), merged.text, "left 7", "left 8"]
    assert texts[9:] == [f"right {row}" for row in range(4)]


def test_a_line_whose_box_starts_inside_the_other_column_does_not_close_the_gutter():
    """On the AMT page drawn in greyscale one right-column box began 40 px inside the left column
    ("einsert to be compressed..."): the columns were not seen at all (accuracy 0.31)."""
    left = [_line(200, 100 + 35 * row, 860, f"left {row}") for row in range(8)]
    right = [_line(890, 100 + 35 * row, 1550, f"right {row}") for row in range(8)]
    right[5] = _line(848, 100 + 35 * 5, 1447, "right 5, its box started early")
    engine_order = sorted([*left, *right], key=lambda box: (box.top, box.left))
    texts = [box.text for box in reading_order(engine_order)]
    assert texts == [*(box.text for box in left), *(box.text for box in right)]
