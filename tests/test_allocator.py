"""The malloc settings that keep forward-pass activations on the heap (models/allocator.py).

Checked in fresh interpreters, since the settings are process-wide and cannot be undone: with
them, a 64 MB tensor comes from the heap (glibc's mmapped-bytes counter does not move); without
them it is mmapped, as glibc does by default for anything above 32 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from embedhub.config import Settings
from embedhub.models import allocator, backends

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")

PROBE = """
import ctypes, json, sys
import torch
from embedhub.models.allocator import keep_activations_on_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
applied = keep_activations_on_heap() if sys.argv[1] == "tuned" else None
before = libc.mallinfo2().hblkhd
tensor = torch.empty(64 * 1024 * 1024, dtype=torch.uint8)
tensor.fill_(1)
print(json.dumps({"applied": applied, "mmapped": libc.mallinfo2().hblkhd - before}))
"""


def _probe(mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_large_tensors_come_from_the_heap_once_tuned():
    default = _probe("default")
    assert default["mmapped"] >= 64 * 1024 * 1024  # glibc's default: a fresh mmap per big block
    tuned = _probe("tuned")
    assert tuned["applied"] is True
    assert tuned["mmapped"] == 0


def test_loading_a_model_applies_the_settings_only_when_enabled(tiny_model_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(backends, "keep_activations_on_heap", lambda: calls.append(1) or True)
    backends.load_encoder(str(tiny_model_dir), Settings(threads=2, backend="torch", heap_activations=False))
    assert calls == []
    backends.load_encoder(str(tiny_model_dir), Settings(threads=2, backend="torch"))
    assert calls == [1]


def test_applying_twice_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", True)
    assert allocator.keep_activations_on_heap() is True
