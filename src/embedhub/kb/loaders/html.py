"""HTML: main text (main/article when present) with the heading tree, via selectolax."""

from __future__ import annotations

from pathlib import Path

from selectolax.lexbor import LexborHTMLParser as HTMLParser

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, LoaderError, decode_text, pipe_table

_NOISE = "script, style, noscript, nav, footer, header, aside, form, svg, iframe, template"
_BLOCKS = "h1, h2, h3, h4, h5, h6, p, li, pre, table, blockquote, dt, dd, figcaption"


class HtmlLoader(Loader):
    name = "html"
    extensions = (".html", ".htm", ".xhtml")

    def sniff(self, data: bytes) -> bool:
        head = data[:2048].lower()
        return b"<html" in head or b"<!doctype html" in head or b"<body" in head or b"<p>" in head

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        tree = HTMLParser(decode_text(data, path))
        title_node = tree.css_first("title")
        for node in tree.css(_NOISE):
            node.decompose()
        root = tree.css_first("main") or tree.css_first("article") or tree.body
        if root is None:
            raise LoaderError(f"{path.name}: no <body> to read")
        blocks: list[Block] = []
        headings: list[tuple[int, str]] = []
        for node in root.css(_BLOCKS):
            if node.tag in ("p", "li", "dt", "dd") and _inside(node, ("li", "table", "pre", "blockquote")):
                continue
            text = node.text(separator=" ", strip=True) if node.tag != "pre" else node.text()
            if node.tag == "table":
                cells = [
                    [c.text(separator=" ", strip=True) for c in row.css("th, td")] for row in node.css("tr")
                ]
                text = pipe_table(cells)
            if not text.strip():
                continue
            if node.tag[0] == "h" and node.tag[1:].isdigit():
                level = int(node.tag[1])
                headings = [h for h in headings if h[0] < level] + [(level, text)]
                blocks.append(Block(text, kind="heading", heading_path=tuple(h for _, h in headings)))
                continue
            kind = {"li": "list", "pre": "code", "table": "table"}.get(node.tag, "paragraph")
            blocks.append(Block(text, kind=kind, heading_path=tuple(h for _, h in headings)))
        if not blocks:
            text = root.text(separator="\n", strip=True)
            blocks = [Block(text)] if text else []
        title = title_node.text(strip=True) if title_node else None
        return ExtractedDocument(path, "html", blocks, title=title or None)


def _inside(node, tags: tuple[str, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False
