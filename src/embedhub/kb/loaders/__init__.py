"""Loader registry: by extension, checked against the content (a mislabelled file is an error)."""

from __future__ import annotations

from pathlib import Path

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, LoaderError, looks_like_text
from embedhub.kb.loaders.docx import DocxLoader
from embedhub.kb.loaders.html import HtmlLoader
from embedhub.kb.loaders.image import ImageLoader
from embedhub.kb.loaders.markdown import MarkdownLoader
from embedhub.kb.loaders.pdf import PdfLoader
from embedhub.kb.loaders.text import CodeLoader, TextLoader
from embedhub.kb.ocr import OcrOptions, recognise_pages

LOADERS: dict[str, Loader] = {
    loader.name: loader
    for loader in (
        PdfLoader(),
        DocxLoader(),
        ImageLoader(),
        MarkdownLoader(),
        HtmlLoader(),
        CodeLoader(),
        TextLoader(),
    )
}
MAX_FILE_BYTES = 200 * 1024 * 1024

__all__ = [
    "LOADERS",
    "Block",
    "ContentMismatchError",
    "EmptyFileError",
    "ExtractedDocument",
    "Loader",
    "LoaderError",
    "UnsupportedFileTypeError",
    "check_content",
    "load_file",
    "loader_for",
]


def supported_extensions() -> list[str]:
    return sorted({ext for loader in LOADERS.values() for ext in loader.extensions})


def loader_for(path: Path) -> Loader | None:
    suffix = path.suffix.lower()
    for loader in LOADERS.values():
        if suffix in loader.extensions:
            return loader
    return None


def get_loader(name: str) -> Loader:
    if name not in LOADERS:
        raise LoaderError(f"unknown loader {name!r}; choose one of: {', '.join(LOADERS)}")
    return LOADERS[name]


def detect_by_content(data: bytes) -> Loader | None:
    for name in ("pdf", "docx", "image", "html"):
        if LOADERS[name].sniff(data):
            return LOADERS[name]
    return LOADERS["text"] if looks_like_text(data) else None


class UnsupportedFileTypeError(LoaderError):
    """No loader reads files of this extension."""


class EmptyFileError(LoaderError):
    """The file holds nothing but whitespace."""


class ContentMismatchError(LoaderError):
    """The content is not what the extension says (a PDF named .txt, binary data named .md)."""


def check_content(path: Path, data: bytes) -> Loader:
    """The loader for a file, after checking its content agrees with its name: the one check that
    both ingestion and the upload route (which answers before storing anything) run."""
    loader = loader_for(path)
    if loader is None:
        raise UnsupportedFileTypeError(
            f"{path.name}: unsupported file type {path.suffix or '(no extension)'}; supported: "
            + " ".join(supported_extensions())
        )
    if not data.strip():
        raise EmptyFileError(f"{path.name}: the file is empty")
    if not loader.sniff(data):
        actual = detect_by_content(data)
        what = f"looks like {actual.name}" if actual else "is binary data"
        raise ContentMismatchError(
            f"{path.name}: named as {loader.name} but the content {what}; rename or fix the file"
        )
    return loader


def load_file(path: Path, data: bytes | None = None, ocr: OcrOptions | None = None) -> ExtractedDocument:
    """Load one file with the loader its extension names, after checking its content agrees; pages
    without a text layer are read by OCR (`ocr`: the engine and limits; default: any available)."""
    if data is None:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoaderError(f"{path.name}: {size} bytes, over the {MAX_FILE_BYTES}-byte limit per file")
        data = path.read_bytes()
    loader = check_content(path, data)
    document = loader.load(path, data)
    if document.needs_ocr:
        document = recognise_pages(document, loader, data, ocr or OcrOptions())
    if not document.blocks:
        raise LoaderError("; ".join([f"{path.name}: no text found", *document.warnings]))
    return document
