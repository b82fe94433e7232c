"""The OCR engines (kb/ocr.py) on the same scanned pages, English and Chinese, in one run.

Pages:
- English: real PDF pages from ../shared/data/pdf-docx-fixtures/pdf (docling's test PDFs), drawn
  at `--dpi` by the same code ingestion uses (PdfLoader.page_image, greyscale); the ground truth
  is the page's own text layer.
- Chinese: statute text from ../shared/data/long-docs-zh/laws drawn on an A4 page at `--dpi`
  with Noto Sans CJK at 12 pt (Debian fonts-noto-cjk), about 1,000 characters a page; the ground
  truth is the text drawn.

Character accuracy = 1 - CER, CER = Levenshtein distance / reference length, after this
normalisation of both texts: Unicode NFKC (full-width punctuation and letters become their
ASCII forms), whitespace runs collapsed to one space, and spaces beside Chinese characters
removed (Chinese has no spaces; a drawn line break is not one). The text layer's reading order
is the reference, so a column read in another order counts as errors. Seconds per page are wall
time of `engine.read` alone (model loading excluded, one warm-up page first), on this machine
as it is (shared: numbers vary with its load); every engine reads the same pages in turn.

`auto` is what ingestion uses when EMBEDHUB_OCR is auto (with both installed: rapidocr, and
tesseract again for a Latin page whose reading ran words together). `--jpeg QUALITY` stores each
page as a JPEG of that quality first, as scanners and image-only PDFs do: rapidocr loses word
spaces on such pixels, which the PNG pages do not show.

Usage: python benchmarks/ocr_engines.py [--data ../shared/data] [--pages 4] [--dpi 200]
           [--engines rapidocr,tesseract,auto] [--jpeg 75] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time
import unicodedata
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

from embedhub.kb.loaders.pdf import PdfLoader
from embedhub.kb.ocr import OCR_ENGINES, OcrOptions, get_ocr_engine, join_cjk

ENGLISH_PDFS = ("multi_page", "normal_4pages", "amt_handbook_sample", "2305.03393v1-pg9", "redp5110_sampled")
CHINESE_LAWS = (
    "民法典__总则.md",
    "宪法__宪法.md",
    "民法商法__公司法(2023-12-29).md",
    "行政法__个人信息保护法(2021-08-20).md",
)
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return join_cjk(re.sub(r"\s+", " ", text)).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row per character of `a` (insertions by a running minimum)."""
    if not a or not b:
        return max(len(a), len(b))
    codes_b = np.array([ord(c) for c in b])
    previous = np.arange(len(b) + 1)
    positions = np.arange(len(b) + 1)
    for i, character in enumerate(a, start=1):
        substitution = previous[:-1] + (codes_b != ord(character))
        row = np.empty_like(previous)
        row[0] = i
        row[1:] = np.minimum(previous[1:] + 1, substitution)
        previous = np.minimum.accumulate(row - positions) + positions
    return int(previous[-1])


def accuracy(recognised: str, reference: str) -> float:
    reference, recognised = normalise(reference), normalise(recognised)
    return 1 - edit_distance(recognised, reference) / max(1, len(reference))


def english_pages(data: Path, count: int, dpi: int) -> list[tuple[str, Image.Image, str]]:
    pages = []
    loader = PdfLoader()
    for name in ENGLISH_PDFS:
        path = data / "pdf-docx-fixtures" / "pdf" / f"{name}.pdf"
        if not path.is_file():
            continue
        pdf = pdfium.PdfDocument(str(path))
        textpage = pdf[0].get_textpage()
        reference = textpage.get_text_bounded()
        textpage.close()
        pdf.close()
        if len(normalise(reference)) < 200:
            continue  # a page that is mostly picture says little about reading text
        pages.append((f"{name} p.1", loader.page_image(path.read_bytes(), 1, dpi), reference))
        if len(pages) == count:
            break
    return pages


def chinese_pages(data: Path, count: int, dpi: int) -> list[tuple[str, Image.Image, str]]:
    width, height, margin = int(8.27 * dpi), int(11.69 * dpi), int(dpi)  # A4, 1-inch margins
    font = ImageFont.truetype(CJK_FONT, round(12 / 72 * dpi))
    line_height = round(font.size * 1.6)
    pages = []
    for name in CHINESE_LAWS:
        path = data / "long-docs-zh" / "laws" / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8").split("<!-- INFO END -->")[-1]
        paragraphs = [line.lstrip("# ").strip() for line in text.splitlines() if line.strip()]
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        drawn, y = [], margin
        for paragraph in paragraphs:
            line = ""
            for character in paragraph + "\n":
                if character != "\n" and draw.textlength(line + character, font=font) <= width - 2 * margin:
                    line += character
                    continue
                if y + line_height > height - margin:
                    break
                draw.text((margin, y), line, font=font, fill=0)
                drawn.append(line)
                y += line_height
                line = "" if character == "\n" else character
            if y + line_height > height - margin:
                break
        pages.append((f"{name.split('__')[-1].removesuffix('.md')} p.1", image, "".join(drawn)))
        if len(pages) == count:
            break
    return pages


def as_jpeg(image: Image.Image, quality: int) -> Image.Image:
    """The page as a scan stores it: JPEG-compressed at `quality`, decoded again."""
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert(image.mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--pages", type=int, default=4, help="pages per language")
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--engines", default=",".join([*OCR_ENGINES, "auto"]))
    parser.add_argument("--jpeg", type=int, default=None, help="store pages as JPEG of this quality first")
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    sets = {
        "English": english_pages(arguments.data, arguments.pages, arguments.dpi),
        "Chinese": chinese_pages(arguments.data, arguments.pages, arguments.dpi),
    }
    if arguments.jpeg is not None:
        sets = {
            language: [
                (label, as_jpeg(image, arguments.jpeg), reference) for label, image, reference in pages
            ]
            for language, pages in sets.items()
        }
    results = []
    for name in arguments.engines.split(","):
        if name == "auto":
            engine, reason = OcrOptions("auto").resolve()
            if engine is None:
                print(f"auto: skipped ({reason})")
                continue
        else:
            engine = get_ocr_engine(name)
            reason = engine.unavailable_reason()
            if reason:
                print(f"{name}: skipped ({reason}; `{engine.install}`)")
                continue
        engine.read(sets["English"][0][1] if sets["English"] else sets["Chinese"][0][1], 600)  # warm-up
        for language, pages in sets.items():
            scores, seconds = [], []
            for label, image, reference in pages:
                started = time.perf_counter()
                text = engine.read(image, 600)
                seconds.append(time.perf_counter() - started)
                scores.append(accuracy(text, reference))
                print(f"  {name:9} {label:40} accuracy {scores[-1]:.3f}  {seconds[-1]:.2f} s")
            results.append(
                {
                    "engine": name if name != "auto" else f"auto ({engine.name})",
                    "language": language,
                    "pages": len(pages),
                    "character_accuracy": round(float(np.mean(scores)), 4) if scores else None,
                    "seconds_per_page": round(float(np.mean(seconds)), 2) if seconds else None,
                }
            )
    print(f"\n| engine | language | pages | character accuracy (1 - CER) | s / page ({arguments.dpi} dpi) |")
    print("|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['engine']} | {row['language']} | {row['pages']} | {row['character_accuracy']:.3f} "
            f"| {row['seconds_per_page']:.2f} |"
        )
    if arguments.out:
        document = {"dpi": arguments.dpi, "jpeg_quality": arguments.jpeg, "results": results}
        arguments.out.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
