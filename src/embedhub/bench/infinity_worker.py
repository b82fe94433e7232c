"""The Infinity child of `embedhub bench`, run by the Python of Infinity's own virtual environment.

    /path/to/infinity-venv/bin/python infinity_worker.py JOB.json RESULT.json

Infinity (`infinity-emb`) pins versions embedhub cannot share, so this file imports only the
standard library, its sibling `timing.py` and Infinity itself. It measures Infinity's Python
engine in-process (AsyncEmbeddingEngine, the same engine its server runs, without HTTP), with
the engine the job names, its batch size set to the largest batch measured, no warm-up of its
own and no disk cache. `embed()` returns Infinity's own token count, which is reported.

The `optimum` engine (ONNX Runtime) needs an .onnx file beside the model; when the folder has
none, it is exported first with optimum from the same local folder (export time is reported as
load time, not measured). The folder is a temporary copy (runner.model_view): Infinity writes
its optimised graph beside the model.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import run_child, time_cells


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def ensure_onnx(folder: Path) -> str:
    """An ONNX graph in `folder` for Infinity's optimum engine: the one there, or an export."""
    found = sorted(folder.glob("*.onnx"))
    if found:
        return f"found {found[0].name}"
    import shutil
    import tempfile

    from optimum.onnxruntime import ORTModelForFeatureExtraction

    with tempfile.TemporaryDirectory(dir=folder) as staging:
        ORTModelForFeatureExtraction.from_pretrained(str(folder), export=True).save_pretrained(staging)
        for exported in Path(staging).iterdir():
            if exported.name.startswith("model.onnx"):  # the graph, and its external data if any
                shutil.move(str(exported), folder / exported.name)
    return "exported with optimum"


def infinity(job: dict[str, Any]) -> dict[str, Any]:
    import infinity_emb
    from infinity_emb import AsyncEmbeddingEngine, EngineArgs

    if job.get("threads"):
        import torch

        torch.set_num_threads(job["threads"])
    folder = Path(job["model"]["view"])
    loop = asyncio.new_event_loop()
    started = time.perf_counter()
    onnx = ensure_onnx(folder) if job["engine"] == "optimum" else None
    engine = AsyncEmbeddingEngine.from_args(
        EngineArgs(
            model_name_or_path=str(folder),
            served_model_name=job["model"]["name"],
            engine=job["engine"],
            device="cpu",
            batch_size=max(job["batch_sizes"]),
            model_warmup=False,
            vector_disk_cache_path="",
            bettertransformer=False,  # deprecated in the transformers it pins; sdpa is used instead
        )
    )
    loop.run_until_complete(engine.astart())
    load_seconds = time.perf_counter() - started

    def encode(batch: list[str]) -> int:
        _, usage = loop.run_until_complete(engine.embed(sentences=batch))
        return int(usage)

    try:
        cells = time_cells(encode, job)
    finally:
        loop.run_until_complete(engine.astop())
        loop.close()
    return {
        "label": f"Infinity ({job['engine']})",
        "version": f"infinity-emb {infinity_emb.__version__}, torch {_version('torch')}",
        "load_seconds": round(load_seconds, 2),
        "onnx": onnx,
        "cells": cells,
    }


if __name__ == "__main__":
    sys.exit(run_child(infinity))
