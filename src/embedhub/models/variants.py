"""Where derived model variants (an exported ONNX graph, a gate result) live on disk.

One folder per (model weights, backend, format version) under Settings.cache_dir/variants. The key
is a hash of the source weight files' bytes, so replaced weights never reuse a stale variant; the
folder is written under a temporary name and renamed into place, so a crash or a concurrent
process never leaves a half-written variant that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from embedhub.config import Settings

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_fingerprints: dict[tuple[str, int, int], str] = {}


def weights_fingerprint(folder: Path) -> str:
    """sha256 over config.json and every weight file of the folder (names and bytes)."""
    files = sorted(
        path for path in folder.iterdir() if path.suffix in WEIGHT_SUFFIXES or path.name == "config.json"
    )
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _fingerprints:
            file_digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(chunk)
            _fingerprints[key] = file_digest.hexdigest()
        digest.update(path.name.encode() + b"\0" + _fingerprints[key].encode())
    return digest.hexdigest()


def variant_dir(settings: Settings, name: str, folder: Path, backend: str, version: int) -> Path:
    """The cache folder of one backend's variant of the weights in `folder` (may not exist yet)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    key = weights_fingerprint(folder)[:20]
    return settings.cache_dir / "variants" / f"{safe}-{backend}-v{version}-{key}"


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    os.replace(temporary, path)
