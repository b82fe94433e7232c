"""Which folders on the server the knowledge base's HTTP API may read and serve files from.

Uploads live in the collection; server-side folders (`POST .../folders`) and the files served back
(`.../documents/{id}/file`, page images) must stay inside `Settings.folder_roots`, with `..` and
symlinks resolved, or any key holder could read the server's disk."""

from __future__ import annotations

import os
from pathlib import Path

from embedhub.config import Settings, is_loopback
from embedhub.errors import EmbedhubError


class FolderNotAllowedError(EmbedhubError, PermissionError):
    """A server path outside the folders this server may read."""


OUTSIDE_BY_SYMLINK = "a symlink leading outside the allowed folders"


def folder_roots(settings: Settings) -> list[Path] | None:
    """The folders the API may read on the server, resolved; None means any readable folder.

    Default when `folder_roots` is unset: any folder on a loopback bind (only this machine's
    user can reach the API, who can read those files anyway, as with the CLI) and none on any
    other bind (whoever holds a key must not read the server's disk unless a folder is listed)."""
    if settings.folder_roots:
        return [Path(root).expanduser().resolve() for root in settings.folder_roots]
    return None if is_loopback(settings.host) else []


def is_within(path: Path, roots: list[Path]) -> bool:
    """Whether `path`, with `..` and every symlink resolved, is one of the roots or under one."""
    resolved = path.expanduser().resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def outside_roots_message(path: str, roots: list[Path]) -> str:
    if not roots:
        return (
            "server-side folders are off because the server is bound to a non-loopback address; list "
            "the folders it may read in EMBEDHUB_FOLDER_ROOTS (separated by "
            f"{os.pathsep!r}) and restart it"
        )
    listed = os.pathsep.join(str(root) for root in roots)
    return (
        f"{path} is outside the folders this server may read ({listed}); add its folder to "
        "EMBEDHUB_FOLDER_ROOTS and restart the server"
    )


def check_servable(settings: Settings, collection, path: Path) -> None:
    """Files are served from the allowed roots or the collection's own uploads folder only."""
    roots = folder_roots(settings)
    if roots is None:
        return
    if not is_within(path, [*roots, (collection.folder / "uploads").resolve()]):
        raise FolderNotAllowedError(outside_roots_message(path.name, roots))


def check_folder(settings: Settings, path: Path, shown: str) -> list[Path] | None:
    """The roots in force, after refusing a folder outside them (None: any folder)."""
    roots = folder_roots(settings)
    if roots is not None and not is_within(path, roots):
        raise FolderNotAllowedError(outside_roots_message(shown, roots))
    return roots
