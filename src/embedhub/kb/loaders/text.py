"""Plain text and source code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from embedhub.kb.loaders.base import Block, ExtractedDocument, Loader, decode_text_with_encoding

_PARAGRAPH = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    return [part.strip("\n") for part in _PARAGRAPH.split(text) if part.strip()]


class TextLoader(Loader):
    name = "text"
    extensions = (
        ".txt",
        ".text",
        ".rst",
        ".log",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
    )

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        text, encoding = decode_text_with_encoding(data, path)
        return ExtractedDocument(path, "text", [Block(p) for p in paragraphs(text)], encoding=encoding)


class CodeLoader(Loader):
    """Source files. Python is split into top-level functions and classes (methods when a class is
    large) with the standard library's own parser; other languages by blank-line blocks."""

    name = "code"
    extensions = (
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".rb",
        ".php",
        ".swift",
        ".kt",
        ".scala",
        ".sh",
        ".sql",
        ".lua",
        ".r",
        ".m",
    )
    large_class_lines = 80

    def load(self, path: Path, data: bytes) -> ExtractedDocument:
        text, encoding = decode_text_with_encoding(data, path)
        if path.suffix == ".py":
            try:
                blocks = self._python_blocks(text)
            except SyntaxError:
                blocks = [Block(p, kind="code") for p in paragraphs(text)]
        else:
            blocks = [Block(p, kind="code") for p in paragraphs(text)]
        return ExtractedDocument(path, "code", blocks, encoding=encoding)

    def _python_blocks(self, source: str) -> list[Block]:
        lines = source.split("\n")
        tree = ast.parse(source)
        blocks: list[Block] = []
        cursor = 0

        def start_of(node: ast.AST) -> int:
            decorators = getattr(node, "decorator_list", [])
            return min([node.lineno, *[d.lineno for d in decorators]]) - 1

        def flush_until(line: int) -> None:
            nonlocal cursor
            chunk = "\n".join(lines[cursor:line]).strip("\n")
            for part in paragraphs(chunk):
                blocks.append(Block(part, kind="code"))
            cursor = max(cursor, line)

        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            begin, end = start_of(node), node.end_lineno or node.lineno
            flush_until(begin)
            label = f"class {node.name}" if isinstance(node, ast.ClassDef) else f"def {node.name}"
            if isinstance(node, ast.ClassDef) and end - begin > self.large_class_lines:
                blocks.extend(self._class_members(node, lines, label, start_of))
            else:
                blocks.append(
                    Block("\n".join(lines[begin:end]), kind="code", heading_path=(label,), standalone=True)
                )
            cursor = end
        flush_until(len(lines))
        return blocks

    def _class_members(self, node: ast.ClassDef, lines: list[str], label: str, start_of) -> list[Block]:
        blocks: list[Block] = []
        cursor = start_of(node)
        for member in node.body:
            if not isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            begin, end = start_of(member), member.end_lineno or member.lineno
            header = "\n".join(lines[cursor:begin]).strip("\n")
            if header.strip():
                blocks.append(Block(header, kind="code", heading_path=(label,)))
            blocks.append(
                Block(
                    "\n".join(lines[begin:end]),
                    kind="code",
                    heading_path=(label, f"def {member.name}"),
                    standalone=True,
                )
            )
            cursor = end
        tail = "\n".join(lines[cursor : node.end_lineno]).strip("\n")
        if tail.strip():
            blocks.append(Block(tail, kind="code", heading_path=(label,)))
        return blocks
