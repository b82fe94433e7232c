"""Ingest one large generated text file and print peak RSS before and after (run as a script).

The forward pass is replaced by random vectors (tokenisation, chunking, the cache and the store
are the real ones): the question is whether the pipeline holds the whole document's chunks,
tokens and vectors at once, not how fast the model is.
usage: python -m tests.kb.memory_probe MODEL_DIR HOME MEGABYTES
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_text(path: Path, megabytes: float) -> None:
    rng = random.Random(0)
    words = [f"term{i}" for i in range(20000)]
    written = 0
    with path.open("w") as handle:
        while written < megabytes * 1e6:
            paragraph = " ".join(rng.choice(words) for _ in range(120)) + ".\n\n"
            handle.write(paragraph)
            written += len(paragraph)


def main() -> None:
    from embedhub.config import Settings
    from embedhub.kb.collection import KnowledgeBase
    from embedhub.kb.ingest import Ingestor
    from embedhub.models.backends import load_encoder

    model_dir, home, megabytes = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    settings = Settings(home=home, threads=1)
    encoder = load_encoder(model_dir, settings)
    generator = np.random.default_rng(0)
    encoder.embed_token_ids = lambda batch: generator.standard_normal(
        (len(batch), encoder.native_dims), dtype=np.float32
    )
    collection = KnowledgeBase(settings).create("big", encoder, model_reference=model_dir)
    path = home / "big.txt"
    write_text(path, megabytes)
    before = peak_mb()
    started = time.perf_counter()
    report = Ingestor(collection, encoder).ingest([path]).summary()
    print(json.dumps({"before_mb": before, "after_mb": peak_mb(), "seconds": time.perf_counter() - started,
                      "chunks": report["chunks"], "failed": report["failed"],
                      "file_mb": path.stat().st_size / 1e6}))  # fmt: skip


if __name__ == "__main__":
    main()
