"""Finding files: the files an ingest reads under the given paths, and which documents are those
files or lie under those folders (one rule for `kb remove`, `--sync` and the MCP tools)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from embedhub.errors import EmbedhubError
from embedhub.kb.loaders import loader_for, supported_extensions

T = TypeVar("T")


def gather_files(paths: Iterable[Path], glob: str | None = None) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under the given paths; hidden entries are skipped."""
    files: list[Path] = []
    unsupported: list[Path] = []
    for path in paths:
        path = path.expanduser().resolve()
        if not path.exists():
            raise EmbedhubError(f"{path} does not exist")
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            relative = candidate.relative_to(path) if path.is_dir() else Path(candidate.name)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if glob and not (fnmatch.fnmatch(str(relative), glob) or fnmatch.fnmatch(candidate.name, glob)):
                continue
            if path.is_dir() and loader_for(candidate) is None:
                unsupported.append(candidate)
            else:
                files.append(candidate)
    return files, unsupported


def is_under(path: str, target: str) -> bool:
    """Whether the stored path `path` is the file `target` or lies under the folder `target`
    (both absolute; compared as text, as the manifest stores them)."""
    return path == target or path.startswith(target.rstrip("/") + "/")


def under_paths(records: Iterable[T], paths: Sequence[Path], path_of: Callable[[T], str]) -> list[T]:
    """The documents (manifest records, or their JSON form) that are one of these files or lie
    under one of these folders."""
    targets = [str(p.expanduser().resolve()) for p in paths]
    return [record for record in records if any(is_under(path_of(record), t) for t in targets)]


def unsupported_reason(path: Path) -> str:
    """Why a file was left out: no loader reads its type (with the types that are read)."""
    kind = path.suffix or "(no extension)"
    return f"{path.name}: unsupported file type {kind}; supported: " + " ".join(supported_extensions())
