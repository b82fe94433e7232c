"""One benchmark child: the matmul peaks, sentence-transformers, or one embedhub backend.

    python -m embedhub.bench.worker JOB.json RESULT.json

Run by embedhub.bench.runner, one process per peer and model, so each peer's peak RSS is its
own and a crash ends only that child. The job names the kind, the model folder and the texts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from embedhub.bench.timing import run_child, time_cells


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def peaks(job: dict[str, Any]) -> dict[str, Any]:
    """Matmul peaks of this machine, and the forward-pass cost of every model to be measured."""
    from embedhub.bench.flops import forward_cost, measure_peaks
    from embedhub.models.backends import native_bfloat16

    _set_threads(job.get("threads"))
    import torch

    costs = {name: forward_cost(Path(folder)).as_dict() for name, folder in job["cost_folders"].items()}
    return {
        "peaks": measure_peaks(job["peak_seconds"]),
        "native_bfloat16": native_bfloat16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "forward_costs": costs,
    }


def sentence_transformers(job: dict[str, Any]) -> dict[str, Any]:
    """The naive baseline: SentenceTransformer(folder).encode(batch), float32, as users run it."""
    import sentence_transformers as package
    from sentence_transformers import SentenceTransformer

    _set_threads(job.get("threads"))
    started = time.perf_counter()
    # The folder embedhub resolves when it is a sentence-transformers folder; otherwise the view
    # with the module files it lacks (runner.model_view).
    folder = Path(job["model"]["folder"])
    model = SentenceTransformer(
        str(folder if (folder / "modules.json").exists() else job["model"]["view"]), device="cpu"
    )
    model.max_seq_length = max(text_set["length"] for text_set in job["text_sets"])
    load_seconds = time.perf_counter() - started
    # What sentence-transformers itself feeds the model, so its tokens/s is its own; texts where
    # it differs from embedhub's count are reported (they should not exist).
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    tokens_of, differing = {}, 0
    for text_set in job["text_sets"]:
        for text, expected in zip(text_set["texts"], text_set["tokens"], strict=True):
            tokens_of[text] = int(tokenize([text])["attention_mask"].sum())
            differing += tokens_of[text] != expected

    def encode(batch: list[str]) -> int:
        model.encode(batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True)
        return sum(tokens_of[text] for text in batch)

    cells = time_cells(encode, job)
    return {
        "label": "sentence-transformers fp32",
        "version": package.__version__,
        "load_seconds": round(load_seconds, 2),
        "texts_with_other_token_counts": differing,
        "cells": cells,
    }


def embedhub_backend(job: dict[str, Any]) -> dict[str, Any]:
    """One embedhub backend through the ordinary encoder API. A quantised variant the accuracy
    gate refuses is measured anyway, and the result says so."""
    from embedhub.config import Settings
    from embedhub.errors import ModelLoadError
    from embedhub.models.backends import BACKENDS, load_encoder
    from embedhub.models.loading import load_tokenizer, model_folder, resolve

    name = job["backend"]
    settings = Settings(backend=name, threads=job.get("threads"))
    started = time.perf_counter()
    gate = "passed" if BACKENDS[name].quantised else "not gated"
    try:
        encoder = load_encoder(job["model"]["reference"], settings)
    except ModelLoadError as error:
        if not BACKENDS[name].quantised:
            raise
        gate = f"refused: {error}"
        resolved = resolve(job["model"]["reference"], settings)
        folder = model_folder(resolved, settings)
        tokenizer = load_tokenizer(folder, resolved.spec, settings)
        encoder = BACKENDS[name].load(resolved.spec, folder, tokenizer, settings)
    load_seconds = time.perf_counter() - started

    def encode(batch: list[str]) -> int:
        return encoder.encode(batch).prompt_tokens

    try:
        cells = time_cells(encode, job)
    finally:
        encoder.close()
    return {
        "label": f"embedhub {encoder.backend}",
        "gate": gate,
        "load_seconds": round(load_seconds, 2),
        "cells": cells,
    }


KINDS = {"peaks": peaks, "sentence-transformers": sentence_transformers, "embedhub": embedhub_backend}


def main() -> int:
    import json

    kind = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))["kind"]
    return run_child(KINDS[kind])


if __name__ == "__main__":
    sys.exit(main())
