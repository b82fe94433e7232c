"""Documents per second of every installed backend against torch float32, with the cosines.

For each model, each backend encodes the same N SciFact documents (``title + " " + text``,
from ../shared/data/beir-scifact/corpus.jsonl; synthetic English sentences when absent) through
the ordinary encoder API (token-budget batches, the model's own truncation), `--repeats` times
after one warm-up pass; the best time counts. The cosine of each vector to the float32 vector is
reported (min and mean). Run it ALONE on the machine: other processes on the same cores make the
numbers meaningless. A variant the accuracy gate refuses is still measured (its row says
so). The result decides `AUTO_BACKENDS` in embedhub/models/backends.py.

Usage::

    python benchmarks/backends.py --models all-MiniLM-L6-v2,multilingual-e5-small-q4 --docs 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from embedhub.config import Settings, prefer_passive_openmp_waiting
from embedhub.errors import ModelLoadError
from embedhub.models.backends import BACKENDS, available_backends, load_encoder
from embedhub.models.loading import load_tokenizer, model_folder, resolve

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir-scifact" / "corpus.jsonl"


def read_documents(path: Path, count: int) -> list[str]:
    if not path.exists():
        print(f"{path} is absent: synthetic sentences instead")
        return [
            f"Document {i} reports that protein levels change with temperature in cells."
            for i in range(count)
        ]
    documents = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            documents.append(f"{record.get('title', '')} {record.get('text', '')}".strip())
            if len(documents) == count:
                break
    return documents


def measure(encoder, documents: list[str], repeats: int) -> tuple[float, np.ndarray]:
    vectors = encoder.encode(documents, truncate=True).vectors  # warm-up (and the vectors)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        encoder.encode(documents, truncate=True)
        best = min(best, time.perf_counter() - started)
    return len(documents) / best, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="all-MiniLM-L6-v2,multilingual-e5-small-q4")
    parser.add_argument("--backends", default=",".join(available_backends()))
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    options = parser.parse_args()
    prefer_passive_openmp_waiting()
    documents = read_documents(options.corpus, options.docs)
    rows = []
    for model in options.models.split(","):
        reference = None
        baseline = None
        for backend in options.backends.split(","):
            settings = Settings(backend=backend, threads=options.threads)
            started = time.perf_counter()
            gate = "passed" if BACKENDS[backend].quantised else "not gated"
            try:
                encoder = load_encoder(model, settings)
            except ModelLoadError as error:  # refused by the gate: measure it anyway, say so
                gate = f"refused: {error}"
                resolved = resolve(model, settings)
                folder = model_folder(resolved, settings)
                tokenizer = load_tokenizer(folder, resolved.spec, settings)
                encoder = BACKENDS[backend].load(resolved.spec, folder, tokenizer, settings)
            load_seconds = time.perf_counter() - started
            speed, vectors = measure(encoder, documents, options.repeats)
            if reference is None:
                reference, baseline = vectors, speed
            cosines = np.sum(vectors * reference, axis=1)
            row = {
                "model": model,
                "backend": encoder.backend,
                "docs_per_second": round(speed, 2),
                "speedup": round(speed / baseline, 2),
                "cosine_min": round(float(cosines.min()), 5),
                "cosine_mean": round(float(cosines.mean()), 5),
                "load_seconds": round(load_seconds, 1),
                "gate": gate,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            encoder.close()
    if options.out:
        options.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
