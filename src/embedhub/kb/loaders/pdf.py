"""PDF with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL): text per physical page, 1-based."""

from __future__ import annotations

from pathlib import Path

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, LoaderError
from embedhub.kb.loaders.text import paragraphs


class PdfLoader(Loader):
    name = "pdf"
    extensions = (".pdf",)

    def sniff(self, data: bytes) -> bool:
        return data[:1024].lstrip().startswith(b"%PDF")

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            reason = str(error)
            if "password" in reason.lower():
                raise LoaderError(f"{path.name}: the PDF is encrypted (password protected)") from error
            raise LoaderError(f"{path.name}: not a readable PDF ({reason})") from error
        blocks: list[Block] = []
        try:
            pages = len(pdf)
            for number in range(pages):
                page = pdf[number]
                textpage = page.get_textpage()
                text = textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
                textpage.close()
                page.close()
                for part in paragraphs(text):
                    blocks.append(Block(part.strip(), kind="paragraph", page=number + 1))
        finally:
            pdf.close()
        if not blocks:
            raise LoaderError(
                f"{path.name}: no extractable text in {pages} page(s) (scanned images need OCR)"
            )
        return ExtractedDocument(path, "pdf", blocks, pages=pages)
