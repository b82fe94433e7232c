"""The timing loop and the job/result files every benchmark child shares.

Standard library only: the Infinity child runs this file from another virtual environment,
where embedhub is not installed, so one loop times every peer the same way.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: encode(texts) -> tokens the peer processed for them
EncodeCall = Callable[[list[str]], int]


def peak_rss_mb() -> float:
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_cells(encode: EncodeCall, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (length, batch size) cell of the job, shortest and smallest first.

    Each length starts with one untimed warm-up call of one text; each cell then runs whole
    batches (cycling through the texts) until `docs` inputs are done or `seconds` have passed,
    at least one batch. `peak_rss_mb` after a cell is the process's peak up to then: with cells in
    increasing cost order it is, in practice, the peak of the most expensive cell so far."""
    cells = []
    for text_set in sorted(job["text_sets"], key=lambda item: item["length"]):
        texts = list(text_set["texts"])
        encode(texts[:1])
        for batch_size in sorted(job["batch_sizes"]):
            done = tokens = position = 0
            started = time.perf_counter()
            while True:
                batch = [texts[(position + offset) % len(texts)] for offset in range(batch_size)]
                position += batch_size
                tokens += encode(batch)
                done += batch_size
                elapsed = time.perf_counter() - started
                if done >= job["docs"] or elapsed >= job["seconds"]:
                    break
            cells.append(
                {
                    "length": text_set["length"],
                    "batch_size": batch_size,
                    "docs": done,
                    "tokens": tokens,
                    "seconds": round(elapsed, 4),
                    "docs_per_second": done / elapsed,
                    "tokens_per_second": tokens / elapsed,
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            )
            print(
                f"  length {text_set['length']:>5} batch {batch_size:>3}: {done / elapsed:9.2f} docs/s "
                f"{tokens / elapsed:11.1f} tokens/s",
                file=sys.stderr,
                flush=True,
            )
    return cells


def run_child(body: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Entry point of a child: argv is JOB.json RESULT.json. The result file always gets written,
    with the error and its traceback when the body fails, so the parent can report it."""
    job_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    started = time.perf_counter()
    try:
        result = body(job)
        status = 0
    except BaseException as error:  # the parent reports any failure of the child, then goes on
        result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}
        print(result["traceback"], file=sys.stderr, flush=True)  # into the child's log as well
        status = 1
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return status
