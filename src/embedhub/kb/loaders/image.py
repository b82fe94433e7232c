"""Images as documents (PNG, JPEG, TIFF, WebP): a photographed or scanned page has its text read
by OCR (kb/ocr.py). Each frame is a page, so a multi-page TIFF from a scanner cites its pages like
a PDF; an animated WebP or GIF-like sequence is read frame by frame the same way."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from embedhub.kb.loaders.base import ExtractedDocument, Loader, LoaderError

_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
#: the largest image read (pixels): an A4 page at 600 dpi is 35 M; PIL's own bomb guard is 89 M
MAX_PIXELS = 80_000_000


class ImageLoader(Loader):
    name = "image"
    extensions = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

    def sniff(self, data: bytes) -> bool:
        return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        with _open(path, data) as image:
            frames = getattr(image, "n_frames", 1)
        return ExtractedDocument(path, "image", [], pages=frames, needs_ocr=list(range(1, frames + 1)))

    def page_image(self, data: bytes, page: int, dpi: int) -> Image.Image:
        """The frame as it is: a scan's own resolution is what OCR should see (no resampling)."""
        with _open(Path("image"), data) as image:
            frame = ImageSequence.Iterator(image)[page - 1]
            return frame.convert("RGB")


def _open(path: Path, data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise LoaderError(f"{path.name}: not a readable image ({error})") from error
    if image.width * image.height > MAX_PIXELS:
        raise LoaderError(
            f"{path.name}: {image.width}x{image.height} pixels, over the {MAX_PIXELS:,}-pixel limit per image"
        )
    return image


def render_frame(path: Path, page: int) -> bytes:
    """One frame (1-based) as PNG bytes, for citations shown beside their text."""
    loader = ImageLoader()
    image = loader.page_image(path.read_bytes(), page, 0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
