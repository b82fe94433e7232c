"""Peak memory of ingesting one large text file stays bounded (slow: run with -m slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_large_text_ingest_memory_is_bounded(tiny_model_dir, tmp_path):
    # measured on the 2-core dev box (forward pass stubbed): before batching, 5 MB grew peak RSS
    # by 422 MB (linear in the file: ~4 GB for 50 MB); after, 5 MB grows it by 61 MB and 50 MB
    # (88k chunks, 225 s) by 177 MB
    command = [sys.executable, "-m", "tests.kb.memory_probe", str(tiny_model_dir), str(tmp_path), "50"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["failed"] == 0 and measured["chunks"] > 50_000
    grown = measured["after_mb"] - measured["before_mb"]
    # the file itself (50 MB of bytes, then its decoded text and paragraphs) is in memory once;
    # chunks, token ids, vectors and rows only a batch at a time
    assert grown < 400, f"peak RSS grew by {grown:.0f} MB while ingesting a 50 MB text file"
