"""The Infinity child of `embedhub bench`, run by the Python of Infinity's own virtual environment.

    /path/to/infinity-venv/bin/python infinity_worker.py JOB.json RESULT.json

Infinity (`infinity-emb`) pins versions embedhub cannot share, so this file imports only the
standard library, its sibling `timing.py` and Infinity itself. It measures Infinity's Python
engine in-process (AsyncEmbeddingEngine, the same engine its server runs, without HTTP), with
the engine the job names, its batch size set to the largest batch measured, no warm-up of its
own and no disk cache.

The `optimum` engine (ONNX Runtime) needs an .onnx file beside the model; when the folder has
none, it is exported first with optimum from the same local folder, in a child of its own
(`prepare`, not measured). Infinity 0.0.78 then optimises the graph itself (ONNX Runtime level 99
with the transformer fusions) with an argument optimum 2 no longer takes, logs a warning and runs
the unoptimised graph; so the same optimisation is done here first, where Infinity looks for an
optimised graph, and Infinity loads that one, as it means to. The outcome is in `onnx`.

Infinity is started inside the model folder (a temporary copy, runner.model_view) with the path
".": it passes the ONNX file it finds as a path relative to the folder it was given, which
optimum 2 accepts only in that form. Its cache folder (HF_HUB_CACHE) is the child's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import run_child, time_cells


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


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


def optimise_for_infinity(folder: Path) -> str:
    """The graph optimisation Infinity attempts, written where it looks for the result."""
    from huggingface_hub.constants import HUGGINGFACE_HUB_CACHE
    from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    provider = "CPUExecutionProvider"
    target = Path(HUGGINGFACE_HUB_CACHE) / "infinity_onnx" / provider / "."
    try:
        model = ORTModelForFeatureExtraction.from_pretrained(
            str(folder), file_name="model.onnx", provider=provider
        )
        ORTOptimizer.from_pretrained(model).optimize(
            optimization_config=OptimizationConfig(optimization_level=99, optimize_for_gpu=False),
            save_dir=str(target),
            one_external_file=True,
        )
    except Exception as error:  # Infinity then runs the exported graph, as it would itself
        return f"graph not optimised ({type(error).__name__}: {error}); Infinity runs the exported graph"
    return "graph optimised (ONNX Runtime level 99)"


def infinity(job: dict[str, Any]) -> dict[str, Any]:
    import infinity_emb
    from infinity_emb import AsyncEmbeddingEngine, EngineArgs

    if job.get("threads"):
        import torch

        torch.set_num_threads(job["threads"])
    # A batch that fails inside Infinity's batching thread is logged there and its request is
    # never answered: watch the log, so the child fails at once instead of waiting forever.
    errors = _ErrorLog()
    logging.getLogger("infinity_emb").addHandler(errors)
    folder = Path(job["model"]["view"])
    loop = asyncio.new_event_loop()
    started = time.perf_counter()
    os.chdir(folder)
    engine = AsyncEmbeddingEngine.from_args(
        EngineArgs(
            model_name_or_path=".",
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

    # Infinity's `usage` counts characters unless it tokenises for scheduling, so tokens are the
    # model tokenizer's counts (the same tokenizer file Infinity loads).
    tokens_of = {
        text: tokens
        for text_set in job["text_sets"]
        for text, tokens in zip(text_set["texts"], text_set["tokens"], strict=True)
    }

    def encode(batch: list[str]) -> int:
        task = loop.create_task(engine.embed(sentences=batch))
        while not task.done():
            loop.run_until_complete(asyncio.wait({task}, timeout=1.0))
            if errors.messages and not task.done():
                task.cancel()
                raise RuntimeError(f"Infinity failed on a batch: {errors.messages[0]}")
        task.result()
        return sum(tokens_of[text] for text in batch)

    try:
        cells = time_cells(encode, job)
    finally:
        loop.run_until_complete(engine.astop())
        loop.close()
    return {
        "label": f"Infinity ({job['engine']})",
        "version": f"infinity-emb {infinity_emb.__version__}, torch {_version('torch')}",
        "load_seconds": round(load_seconds, 2),
        "cells": cells,
    }


def prepare(job: dict[str, Any]) -> dict[str, Any]:
    """The optimum engine's ONNX graph, made in a child of its own so the export's memory does
    not count in Infinity's peak RSS."""
    folder = Path(job["model"]["view"])
    return {"onnx": f"{ensure_onnx(folder)}; {optimise_for_infinity(folder)}"}


if __name__ == "__main__":
    kind = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))["kind"]
    sys.exit(run_child(prepare if kind == "infinity-prepare" else infinity))
