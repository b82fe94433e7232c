"""Markdown: the heading tree from markdown-it-py's token stream; blocks keep their source text,
without HTML comments (`<!-- ... -->` is for the author: neither indexed nor shown)."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, decode_text, pipe_table

_BLOCK_KINDS = {
    "paragraph_open": "paragraph",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "table_open": "table",
    "fence": "code",
    "code_block": "code",
    "blockquote_open": "paragraph",
    "html_block": "paragraph",
}


_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)


def _without_comments(source: str) -> str:
    """The block's text without HTML comments; blank lines a comment leaves behind collapse."""
    text = _COMMENT.sub("", source)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip()


class MarkdownLoader(Loader):
    name = "markdown"
    extensions = (".md", ".markdown", ".mdx")

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        text = decode_text(data, path)
        lines = text.split("\n")
        tokens = MarkdownIt("commonmark").enable("table").parse(text)
        blocks: list[Block] = []
        headings: list[tuple[int, str]] = []
        title = None
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.type == "heading_open" and token.level == 0:
                level = int(token.tag[1])
                heading = tokens[index + 1].content.strip()
                headings = [h for h in headings if h[0] < level] + [(level, heading)]
                title = title or heading
                blocks.append(Block(heading, kind="heading", heading_path=tuple(h for _, h in headings)))
                index += 3
                continue
            kind = _BLOCK_KINDS.get(token.type)
            if kind and token.level == 0 and token.map:
                start, end = token.map
                source = "\n".join(lines[start:end]).strip("\n")
                if kind == "table":  # the source may lack outer pipes or pad columns: one form for all
                    source = pipe_table(_table_rows(tokens, index))
                elif kind != "code":  # a comment inside a code sample is part of the sample
                    source = _without_comments(source)
                if source:
                    blocks.append(Block(source, kind=kind, heading_path=tuple(h for _, h in headings)))
                if token.nesting == 1:
                    index = _skip_to_close(tokens, index)
            index += 1
        return ExtractedDocument(path, "markdown", blocks, title=title)


def _table_rows(tokens, index: int) -> list[list[str]]:
    """The cells (their inline source, comments removed) of the table opened at `index`."""
    rows: list[list[str]] = []
    for token in tokens[index : _skip_to_close(tokens, index) + 1]:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(_COMMENT.sub("", token.content).strip())
    return rows


def _skip_to_close(tokens, index: int) -> int:
    depth = 0
    for position in range(index, len(tokens)):
        depth += tokens[position].nesting
        if depth == 0:
            return position
    return len(tokens) - 1
