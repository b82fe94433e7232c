"""OCR for pages without a text layer (scanned PDF pages, image files), offline, Chinese and English.

A scanned contract or an old report has pages that are pictures: without OCR it yields no text and
cannot be found. Loaders say which pages need reading (`ExtractedDocument.needs_ocr`) and how to
draw one (`Loader.page_image`); `recognise_pages` reads them with an `OcrEngine` chosen by name.

Both engines run without any download at run time: rapidocr's wheel carries the PP-OCRv4
Chinese+English detection/recognition models (ONNX Runtime), tesseract is Debian's binary with its
`chi_sim` and `eng` data. benchmarks/ocr_engines.py measures them on the same pages; the table is
in docs/retrieval.md ("Scanned PDFs and images (OCR)"). `auto` takes the first available engine in
`AUTO_ORDER`: rapidocr, as accurate as tesseract on Chinese and single-column English and about
5x faster on Chinese. rapidocr's lines come sorted by height only; `reading_order` puts the
columns of a multi-column page back one after the other (tesseract does its own layout). With
both installed, `auto` is `SpacingFallbackEngine`: a mostly-Latin page where rapidocr ran more
than an odd line's words together (it does on JPEG-compressed scans) is read again by tesseract,
which keeps the spaces.

Limits: a page that takes longer than `page_seconds` is given up with a message (tesseract's
process is stopped; rapidocr runs in this process and cannot be interrupted, so its page finishes
in the background and the remaining pages of that document are not read). At most `max_pages`
pages of one document are read; the rest are named in the document's warning.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from embedhub.errors import ConfigurationError, EmbedhubError

if TYPE_CHECKING:
    from PIL import Image

    from embedhub.config import Settings
    from embedhub.kb.loaders.base import ExtractedDocument, Loader

#: the pip command that installs the rapidocr engine (what a "needs OCR" message tells users)
PIP_INSTALL = "pip install 'embedhub[ocr]'"
APT_INSTALL = "apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng"
#: PDF pages are drawn at 200 dpi for OCR: the resolution the engines were measured at (12 pt CJK
#: text and the 9-10 pt print of docling's test PDFs read at 0.95-1.00, docs/retrieval.md)
RENDER_DPI = 200


class OcrError(EmbedhubError):
    """An OCR engine failed on a page (not installed, broken image, too slow)."""


class OcrTimeoutError(OcrError):
    """One page took longer than the per-page limit."""


class OcrEngine(ABC):
    """Reads the text of one page image: lines in reading order, paragraphs separated by a blank line."""

    name: str
    install: str  # the exact command that makes this engine available

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when the engine can run here, else why not (without the install command)."""

    @abstractmethod
    def read(self, image: Image.Image, timeout: float) -> str:
        """The page's text; `OcrTimeoutError` past `timeout` seconds."""


class RapidOcrEngine(OcrEngine):
    """PP-OCRv4 (Chinese + English in one model) on ONNX Runtime, from the rapidocr-onnxruntime wheel."""

    name = "rapidocr"
    install = PIP_INSTALL

    def __init__(self) -> None:
        self._engine = None
        self._lock = threading.Lock()  # one model instance; its sessions are not shared across pages
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedhub-ocr")

    def unavailable_reason(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            return "the rapidocr-onnxruntime package is not installed"
        return None

    def _model(self):
        if self._engine is None:
            from rapidocr_onnxruntime import RapidOCR

            self._engine = RapidOCR()
        return self._engine

    def _read(self, image: Image.Image) -> str:
        import numpy as np

        with self._lock:
            # no angle classifier: on upright scans it turned clean lines upside down and lost them
            # (docling's multi_page.pdf: accuracy 0.884 with it, 0.994 without)
            result, _ = self._model()(np.asarray(image.convert("RGB"))[:, :, ::-1], use_cls=False)
        boxes = [
            TextBox(
                min(p[0] for p in box),
                min(p[1] for p in box),
                max(p[0] for p in box),
                max(p[1] for p in box),
                text,
            )
            for box, text, _score in result or []
            if text.strip()
        ]
        return join_lines([(box.top, box.bottom, box.text) for box in reading_order(boxes)])

    def read(self, image: Image.Image, timeout: float) -> str:
        future = self._runner.submit(self._read, image)
        try:
            return future.result(timeout=timeout)
        except FutureTimeoutError:
            raise OcrTimeoutError(f"over the {timeout:g}-second limit per page") from None


class TesseractEngine(OcrEngine):
    """Debian's tesseract (LSTM) with chi_sim + eng, one process per page (stopped at the limit)."""

    name = "tesseract"
    install = APT_INSTALL
    languages = "chi_sim+eng"

    def unavailable_reason(self) -> str | None:
        binary = shutil.which("tesseract")
        if binary is None:
            return "the tesseract program is not installed"
        listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30)
        missing = set(self.languages.split("+")) - set(listed.stdout.split())
        if missing:
            return f"tesseract has no language data for {', '.join(sorted(missing))}"
        return None

    def read(self, image: Image.Image, timeout: float) -> str:
        import io

        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        command = ["tesseract", "-", "-", "-l", self.languages, "--dpi", str(RENDER_DPI), "tsv"]
        try:
            done = subprocess.run(command, input=buffer.getvalue(), capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise OcrTimeoutError(f"over the {timeout:g}-second limit per page") from None
        if done.returncode != 0:
            raise OcrError(f"tesseract failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
        return _tesseract_text(done.stdout.decode("utf-8", errors="replace"))


def _tesseract_text(tsv: str) -> str:
    """Words of tesseract's TSV joined into lines and paragraphs (its block/paragraph/line numbers);
    chi_sim puts a space between every two Chinese characters, which are taken out."""
    paragraphs: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for row in tsv.splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
            continue
        paragraph = paragraphs.setdefault((fields[1], fields[2], fields[3]), {})
        paragraph.setdefault(fields[4], []).append(fields[11].strip())
    return "\n\n".join(
        "\n".join(join_cjk(" ".join(words)) for words in lines.values()) for lines in paragraphs.values()
    )


_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


class TextBox(NamedTuple):
    """One recognised line and its bounding box, in pixels (y grows downwards)."""

    left: float
    top: float
    right: float
    bottom: float
    text: str


#: a gap between columns is at least this many median line heights wide (the two-column page of
#: docling's amt_handbook_sample.pdf: 20-25 px at 200 dpi between columns, lines 30 px high)
MIN_GUTTER_LINE_HEIGHTS = 0.5
#: boxes wider than this share of the text's width are headings or figures across the columns
MAX_COLUMN_WIDTH_SHARE = 0.6
#: a gutter may be crossed by this share of the narrow boxes (at least one): on docling's
#: amt_handbook_sample page drawn in greyscale, one right-column line's box began 40 px inside the
#: left column ("einsert to be compressed..."), which closed the gap (character accuracy 0.31)
MAX_GUTTER_CROSSINGS = 0.03
#: a side of a gutter is a column when it holds at least this many lines
MIN_COLUMN_LINES = 3
#: ... and when its lines are text, not table cells: their median width is at least this share of
#: the text's width (the columns of amt_handbook_sample.pdf: 0.49; the cells of the table on
#: 2305.03393v1-pg9.pdf, which the engine's row order reads right: under 0.1)
MIN_COLUMN_WIDTH_SHARE = 0.3


def reading_order(boxes: list[TextBox]) -> list[TextBox]:
    """Boxes in reading order: each column top to bottom, then the next, with boxes that run across
    the columns (titles, wide figures) read where they stand. rapidocr returns lines sorted by height
    on the page only, so a two-column page came out as left line, right line, left line... (character
    accuracy 0.57 on docling's amt_handbook_sample.pdf, 0.97-1.00 on its one-column pages). A page
    without a gutter keeps the engine's order; more than two columns are found by recursion."""
    narrow = _narrow_boxes(boxes)
    found = _gutter(boxes, narrow)
    if found is None:
        return boxes
    gutter_left, gutter_right = found
    left, right = [], []
    for box in narrow:
        # a narrow box over the gutter belongs to the side holding most of it
        on_left = max(0.0, min(box.right, gutter_left) - box.left)
        on_right = max(0.0, box.right - max(box.left, gutter_right))
        if box.right <= gutter_left or on_left >= 3 * on_right:
            left.append(box)
        elif box.left >= gutter_right or on_right >= 3 * on_left:
            right.append(box)
    placed = {id(box) for box in left} | {id(box) for box in right}
    across = sorted((box for box in boxes if id(box) not in placed), key=lambda box: box.top)
    # The detector sometimes merges a column's line with a label beside it into one wide box: a
    # box that the left column runs straight into and out of is that column's line, not a title.
    heights = sorted(box.bottom - box.top for box in boxes)
    near = heights[len(heights) // 2] / 2
    for box in list(across):
        above = any(0 <= box.top - other.bottom <= near for other in left)
        below = any(0 <= other.top - box.bottom <= near for other in left)
        if box.left < gutter_left and above and below:
            across.remove(box)
            left.append(box)
    left.sort(key=lambda box: box.top)
    ordered: list[TextBox] = []
    for limit in [*(box.top for box in across), float("inf")]:
        for column in (left, right):
            segment = [box for box in column if (box.top + box.bottom) / 2 < limit]
            column[:] = [box for box in column if (box.top + box.bottom) / 2 >= limit]
            ordered.extend(reading_order(segment))
        if across:
            ordered.append(across.pop(0))
    return ordered


def _narrow_boxes(boxes: list[TextBox]) -> list[TextBox]:
    """The boxes that could be a column's lines: narrower than MAX_COLUMN_WIDTH_SHARE of the text."""
    if not boxes:
        return []
    width = max(box.right for box in boxes) - min(box.left for box in boxes)
    return [box for box in boxes if box.right - box.left < MAX_COLUMN_WIDTH_SHARE * width]


def _gutter(boxes: list[TextBox], narrow: list[TextBox]) -> tuple[float, float] | None:
    """The widest vertical gap between columns of lines, as (its left edge, its right edge), or None:
    a run of x positions that at most MAX_GUTTER_CROSSINGS narrow boxes cover (a line whose box
    the detector started a little early must not close the gap), in the middle 60% of the text's
    width, wide enough (MIN_GUTTER_LINE_HEIGHTS) and with a column (MIN_COLUMN_LINES) on each side."""
    if len(boxes) < 2 * MIN_COLUMN_LINES:
        return None
    start, end = int(min(box.left for box in boxes)), int(max(box.right for box in boxes)) + 1
    heights = sorted(box.bottom - box.top for box in boxes)
    min_gap = MIN_GUTTER_LINE_HEIGHTS * heights[len(heights) // 2]
    coverage = [0] * (end - start + 1)  # boxes over each pixel column, by a difference array
    for box in narrow:
        coverage[int(box.left) - start] += 1
        coverage[int(box.right) - start] -= 1
    allowed = max(1, int(MAX_GUTTER_CROSSINGS * len(narrow)))
    best: tuple[float, float] | None = None
    covered, run_start = 0, None
    for offset, change in enumerate(coverage):
        covered += change
        if covered <= allowed and run_start is None:
            run_start = offset
        elif covered > allowed and run_start is not None:
            left, right = start + run_start, start + offset
            middle = (left + right) / 2
            inside = start + 0.2 * (end - start) <= middle <= start + 0.8 * (end - start)
            if inside and right - left >= min_gap and (best is None or right - left > best[1] - best[0]):
                best = (left, right)
            run_start = None
    if best is None:
        return None
    for side in (
        [box for box in narrow if box.right <= best[0]],
        [box for box in narrow if box.left >= best[1]],
    ):
        widths = sorted(box.right - box.left for box in side)
        if len(side) < MIN_COLUMN_LINES or widths[len(widths) // 2] < MIN_COLUMN_WIDTH_SHARE * (end - start):
            return None
    return best


def join_cjk(text: str) -> str:
    """Remove spaces beside Chinese characters and full-width punctuation (Chinese has none)."""
    return _SPACE_NEXT_TO_CJK.sub("", text)


def join_lines(lines: list[tuple[float, float, str]]) -> str:
    """(top, bottom, text) lines in reading order -> text; a vertical gap larger than the median
    line height starts a new paragraph (a blank line, what the chunker splits on)."""
    if not lines:
        return ""
    heights = sorted(bottom - top for top, bottom, _ in lines)
    median = heights[len(heights) // 2] or 1.0
    parts = [lines[0][2]]
    for (_, previous_bottom, _), (top, _, text) in itertools.pairwise(lines):
        parts.append(("\n\n" if top - previous_bottom > median else "\n") + text)
    return "".join(parts)


OCR_ENGINES: dict[str, type[OcrEngine]] = {"rapidocr": RapidOcrEngine, "tesseract": TesseractEngine}
#: what `auto` tries, best first (by the measured character accuracy on Chinese and English)
AUTO_ORDER = ("rapidocr", "tesseract")
_instances: dict[str, OcrEngine] = {}
_instances_lock = threading.Lock()


#: Latin letters per space above which a line has lost its word spaces. English prose has about 5.5
#: (6.6 on a rendered paper page); rapidocr's reading of a page stored as JPEG in an image-only PDF,
#: as scans are, ran whole lines together ("Wehave chosenthePubTabNetdata": 24 on that page).
MAX_LETTERS_PER_SPACE = 12.0
#: lines with fewer Latin letters than this (page numbers, labels, formulas) are not judged
MIN_LETTERS_IN_LINE = 20
#: below this many Latin letters in judged lines a page says too little to judge its spacing
MIN_LETTERS_TO_JUDGE = 200
#: share of a page's judged letters in run-together lines from which the page is read again. Measured
#: on docling's 9 test pages (benchmarks/real_documents.py --ocr): rapidocr on the PNG pages 0-5.6%,
#: on the same pages as JPEG in an image-only PDF 9.9-73.6%; a page-wide letters-per-space average
#: (6.7-9.7 on multi_page.pdf's JPEG pages) missed pages where a quarter of the lines ran together.
MAX_RUN_TOGETHER_SHARE = 0.05
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CJK_CHARACTER = re.compile(rf"[{_CJK}]")


def run_together_share(text: str) -> float | None:
    """The share of mostly-Latin text's letters that sit in lines which lost their word spaces, or
    None when there is too little Latin text (or more Chinese than Latin) to judge."""
    if len(_LATIN.findall(text)) < len(_CJK_CHARACTER.findall(text)):
        return None
    judged = run_together = 0
    for line in text.splitlines():
        letters = len(_LATIN.findall(line))
        if letters < MIN_LETTERS_IN_LINE:
            continue
        judged += letters
        if letters / (line.count(" ") + 1) > MAX_LETTERS_PER_SPACE:
            run_together += letters
    return run_together / judged if judged >= MIN_LETTERS_TO_JUDGE else None


def spaces_dropped(text: str) -> bool:
    """Whether mostly-Latin text has lost the spaces between its words in more than an odd line
    (see MAX_RUN_TOGETHER_SHARE)."""
    share = run_together_share(text)
    return share is not None and share > MAX_RUN_TOGETHER_SHARE


class SpacingFallbackEngine(OcrEngine):
    """`auto` with both engines installed: rapidocr (fast, the best on Chinese) reads each page, and
    a mostly-Latin page whose reading lost its word spaces (rapidocr does that on JPEG-compressed
    scans) is read again by tesseract, which keeps them."""

    def __init__(self, primary: OcrEngine, fallback: OcrEngine) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.install = primary.install

    def unavailable_reason(self) -> str | None:
        return self.primary.unavailable_reason() or self.fallback.unavailable_reason()

    def read(self, image: Image.Image, timeout: float) -> str:
        started = time.monotonic()
        text = self.primary.read(image, timeout)
        share = run_together_share(text)
        if share is None or share <= MAX_RUN_TOGETHER_SHARE:  # what `spaces_dropped` says
            return text
        again = self.fallback.read(image, max(1.0, timeout - (time.monotonic() - started)))
        return again if (run_together_share(again) or 0.0) < share else text


def check_ocr_setting(value: str) -> str:
    """`auto`, `none` or an engine name; a wrong one names the choices."""
    if value not in ("auto", "none", *OCR_ENGINES):
        raise ConfigurationError(
            f"unknown OCR engine {value!r}; choose one of: auto, none, {', '.join(OCR_ENGINES)}"
        )
    return value


def get_ocr_engine(name: str) -> OcrEngine:
    """The shared engine of that name (its model is loaded once per process, on first use)."""
    check_ocr_setting(name)
    if name not in OCR_ENGINES:
        raise ConfigurationError(f"{name!r} is not an OCR engine; choose one of: {', '.join(OCR_ENGINES)}")
    with _instances_lock:
        if name not in _instances:
            _instances[name] = OCR_ENGINES[name]()
        return _instances[name]


@dataclass(frozen=True)
class OcrOptions:
    """What OCR does during ingestion (from Settings: EMBEDHUB_OCR, _OCR_PAGE_SECONDS, _OCR_MAX_PAGES)."""

    engine: str = "auto"
    page_seconds: float = 180.0
    max_pages: int = 200
    dpi: int = RENDER_DPI

    def __post_init__(self) -> None:
        check_ocr_setting(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> OcrOptions:
        return cls(settings.ocr, settings.ocr_page_seconds, settings.ocr_max_pages)

    def resolve(self) -> tuple[OcrEngine | None, str]:
        """The engine to use, or None and the sentence saying why and what to install."""
        if self.engine == "none":
            return None, "OCR is off (EMBEDHUB_OCR=none); set EMBEDHUB_OCR=auto to read them"
        names = AUTO_ORDER if self.engine == "auto" else (self.engine,)
        if self.engine == "auto":
            engines = [get_ocr_engine(name) for name in AUTO_ORDER]
            if all(engine.unavailable_reason() is None for engine in engines):
                return SpacingFallbackEngine(*engines), ""
        reasons = []
        for name in names:
            engine = get_ocr_engine(name)
            reason = engine.unavailable_reason()
            if reason is None:
                return engine, ""
            reasons.append(f"{reason}: install it with `{engine.install}`")
        return None, "no OCR engine is available (" + "; or ".join(reasons) + ")"


def page_list(pages: list[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5" (what a message names)."""
    ranges: list[list[int]] = []
    for page in pages:
        if ranges and page == ranges[-1][1] + 1:
            ranges[-1][1] = page
        else:
            ranges.append([page, page])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def recognise_pages(
    document: ExtractedDocument, loader: Loader, data: bytes, options: OcrOptions
) -> ExtractedDocument:
    """The document with its `needs_ocr` pages read by OCR (their blocks in page order among the
    others); pages left unread (no engine, the page cap, a timeout) are named in `warnings`."""
    from embedhub.kb.loaders.base import Block
    from embedhub.kb.loaders.text import paragraphs

    wanted = sorted(document.needs_ocr)
    warnings = list(document.warnings)
    engine, reason = options.resolve()
    if engine is None:
        warnings.append(f"needs OCR: page(s) {page_list(wanted)} have no text layer; {reason}")
        return _with(document, document.blocks, warnings=warnings)
    chosen, over_cap = wanted[: options.max_pages], wanted[options.max_pages :]
    read: dict[int, str] = {}
    for index, page in enumerate(chosen):
        image = loader.page_image(data, page, options.dpi)
        try:
            read[page] = engine.read(image, options.page_seconds)
        except OcrTimeoutError as error:
            rest = chosen[index + 1 :]
            warnings.append(
                f"OCR gave up on page {page} ({error}, EMBEDHUB_OCR_PAGE_SECONDS)"
                + (f"; page(s) {page_list(rest)} were not read" if rest else "")
            )
            break
        except OcrError as error:
            warnings.append(f"OCR failed on page {page}: {error}")
        finally:
            image.close()
    if over_cap:
        warnings.append(
            f"OCR read {options.max_pages} pages, the limit per document (EMBEDHUB_OCR_MAX_PAGES); "
            f"page(s) {page_list(over_cap)} were not read: raise the limit to read them"
        )
    # a page's OCR text replaces its text layer unless the layer had more words (then OCR added nothing)
    layer: dict[int, str] = {}
    for block in document.blocks:
        layer[block.page or 0] = layer.get(block.page or 0, "") + block.text
    recognised = {page: text for page, text in read.items() if _words(text) > _words(layer.get(page, ""))}
    ocr_blocks = [
        Block(part.strip(), kind="paragraph", page=page)
        for page, text in recognised.items()
        for part in paragraphs(text)
    ]
    kept = [block for block in document.blocks if block.page not in recognised]
    blocks = sorted([*kept, *ocr_blocks], key=lambda block: block.page or 0)  # stable: order in a page kept
    result = _with(document, blocks, warnings=warnings)
    result.ocr_pages = sorted(recognised)
    result.ocr_engine = engine.name if read else None
    return result


def _words(text: str) -> int:
    return sum(1 for character in text if character.isalnum())


def _with(document: ExtractedDocument, blocks, *, warnings: list[str]) -> ExtractedDocument:
    from embedhub.kb.loaders.base import ExtractedDocument

    return ExtractedDocument(
        document.path,
        document.file_type,
        blocks,
        title=document.title,
        pages=document.pages,
        encoding=document.encoding,
        needs_ocr=[],
        ocr_pages=list(document.ocr_pages),
        ocr_engine=document.ocr_engine,
        warnings=warnings,
    )
