"""Uploaded files inside a collection's uploads/ folder: safe relative paths, and storing without
ever silently replacing a different document. (The HTTP upload route is the caller; nothing here
knows about HTTP.)"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Literal

from embedhub.errors import EmbedhubError, InvalidInputError


class UploadConflictError(EmbedhubError):
    """The upload's path is taken and the request said not to keep both (or cannot)."""


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)
_DRIVE = re.compile(r"^[A-Za-z]:$")
MAX_PART_BYTES = 200  # file systems allow 255 bytes per name; room for " (n)" and the ".part" copy
MAX_DEPTH = 8  # folders kept above the file name


def _bounded(part: str, limit: int = MAX_PART_BYTES) -> str:
    """Cut a name to `limit` UTF-8 bytes, keeping its extension."""
    if len(part.encode()) <= limit:
        return part
    stem, dot, suffix = part.rpartition(".")
    if not dot or len(suffix.encode()) > 16:
        stem, suffix = part, ""
    room = limit - len(suffix.encode()) - (1 if suffix else 0)
    stem = stem.encode()[:room].decode(errors="ignore").rstrip(" .")
    return f"{stem}.{suffix}" if suffix else stem


def _safe_part(part: str) -> str:
    part = _UNSAFE.sub("_", "".join(ch for ch in part if ch.isprintable())).strip(" .")
    return _bounded(part)


def safe_relative_path(name: str | None) -> str:
    """The relative path of an upload (a folder upload sends `projA/README.md`), made safe: each
    part printable, without shell-hostile characters, at most MAX_PART_BYTES; `.`, `..`, empty
    parts and drive letters dropped (so never absolute, never outside uploads/); at most
    MAX_DEPTH folders (the nearest ones) above the name."""
    raw = unicodedata.normalize("NFC", (name or "").replace("\\", "/"))
    parts = [part for part in raw.split("/") if part.strip() not in ("", ".", "..")]
    if parts and _DRIVE.match(parts[0]):
        parts = parts[1:]
    parts = [safe for safe in (_safe_part(part) for part in parts) if safe]
    if not parts:
        return "upload.txt"
    return "/".join(parts[-(MAX_DEPTH + 1) :])


def _numbered(relative: str, number: int) -> str:
    """`docs/README.md` -> `docs/README (2).md`."""
    folder, _, name = relative.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    label = f" ({number})"
    stem = _bounded(stem, MAX_PART_BYTES - len(label) - len(suffix.encode()) - 1)
    name = f"{stem}{label}.{suffix}" if suffix else f"{stem}{label}"
    return f"{folder}/{name}" if folder else name


OnConflict = Literal["keep_both", "replace", "reject"]


def store_upload(uploads: Path, relative: str, data: bytes, on_conflict: OnConflict) -> dict:
    """Write an upload under `uploads` without ever silently replacing a different document.

    Identical content at the path (or at one of its ` (n)` copies) is the same document; different
    content is kept beside it as `name (2).ext` unless `on_conflict` is `replace` or `reject`.
    Runs without awaiting, so two uploads in this process never interleave between check and write.
    """
    target = uploads / relative
    if not target.resolve().is_relative_to(uploads.resolve()):
        raise InvalidInputError(f"{relative}: the path leaves the uploads folder")
    outcome = {"stored_as": relative, "renamed_from": None, "replaced": False, "identical": False}
    if target.is_file() and on_conflict != "replace":
        for number in range(1, 1000):
            candidate = relative if number == 1 else _numbered(relative, number)
            path = uploads / candidate
            if not path.exists():
                if on_conflict == "reject":
                    raise UploadConflictError(
                        f"{relative} already exists with different content; upload it with "
                        "on_conflict=replace to replace it or on_conflict=keep_both to keep both"
                    )
                outcome.update(stored_as=candidate, renamed_from=relative)
                target = path
                break
            if path.is_file() and path.read_bytes() == data:
                outcome.update(stored_as=candidate, identical=True)
                return outcome
        else:
            raise UploadConflictError(f"{relative}: too many copies of this name")
    elif target.is_file():
        outcome["identical"] = target.read_bytes() == data
        outcome["replaced"] = not outcome["identical"]
    if target.exists() and not target.is_file():
        raise UploadConflictError(f"{relative}: a folder of that name exists")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise UploadConflictError(f"{relative}: a file of that name holds the folder's place") from error
    temporary = target.with_name("." + target.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(target)
    return outcome


def relative_path(collection, path: str) -> str:
    """An uploaded file's path inside uploads/ (`projA/README.md`); other files keep their path."""
    try:
        return Path(path).relative_to(collection.folder / "uploads").as_posix()
    except ValueError:
        return path


def remove_uploaded_copy(collection, path: str) -> None:
    """Delete a document's stored upload and the folders a folder upload made for it (files
    elsewhere on the disk are the user's, never deleted)."""
    uploads = (collection.folder / "uploads").resolve()
    resolved = Path(path).resolve()
    if uploads not in resolved.parents:
        return
    resolved.unlink(missing_ok=True)
    for folder in resolved.parents:
        if folder == uploads or any(folder.iterdir()):
            break
        folder.rmdir()
