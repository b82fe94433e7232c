"""The Open WebUI recipe as docs/open-webui.md shows it: the tests run exactly the documented settings."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

RECIPE_DOC = ROOT / "docs" / "open-webui.md"
MARKER = "<!-- open-webui-env:"
RERANK_MARKER = "<!-- open-webui-rerank-env:"
_LINE = re.compile(r"(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>\S*)")


def recipe_environment(doc: Path = RECIPE_DOC, marker: str = MARKER) -> dict[str, str]:
    """The KEY=VALUE lines of the block after the marker comment, in order."""
    block = re.compile(re.escape(marker) + r"[^\n]*\n```[a-z]*\n(?P<body>.*?)\n```", re.DOTALL)
    match = block.search(doc.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{doc}: no fenced block after a line starting with {marker!r}")
    environment: dict[str, str] = {}
    for number, line in enumerate(match["body"].splitlines(), 1):
        parsed = _LINE.fullmatch(line.strip())
        if parsed is None:
            raise ValueError(f"{doc}: line {number} of the settings block is not KEY=VALUE: {line!r}")
        environment[parsed["key"]] = parsed["value"]
    return environment
