"""`throughput`: documents and tokens per second at fixed input lengths, with memory use.

Inputs are synthetic: real English text tokenised, repeated and cut to exactly L tokens (special
tokens included), so every length measures the same kind of content. For each length, one
warm-up batch runs first, then `batches` batches of `batch_size` inputs are timed. Lengths above
the model's limit are skipped and said so. Memory: the process's resident memory before the
runs, the peak while they run (sampled every 5 ms), and the model's parameter bytes.

The forward-pass batch is `batch_size` inputs unless the backend's padded-token budget
(`EMBEDHUB_MAX_BATCH_TOKENS`) splits it; the report gives the effective size per length.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from embedhub.eval.core import Curve, EvalContext, Record, TaskResult, timed

MIB = 1024 * 1024
FILLER = (
    "The quick brown fox jumps over the lazy dog. Embedding models turn text into vectors, and "
    "a knowledge base searches those vectors to answer questions about documents. Throughput "
    "depends on the input length, the batch size, the number of threads and the hardware. "
)


@dataclass
class ThroughputOptions:
    """Options of the throughput task (each field is a flag of `embedhub eval throughput`)."""

    lengths: tuple[int, ...] = field(
        default=(128, 512, 2048), metadata={"help": "Comma-separated input lengths in tokens."}
    )
    batch_size: int = field(default=8, metadata={"help": "Inputs per batch."})
    batches: int = field(default=2, metadata={"help": "Timed batches per length."})


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().rss)
    except ImportError:  # pragma: no cover - psutil is a dependency
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class ResidentMemoryWatch:
    """Samples resident memory on a thread while a block runs."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def watch(self) -> Iterator[ResidentMemoryWatch]:
        self.peak = _rss()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, _rss())


def synthetic_inputs(encoder, length: int, count: int) -> list[list[int]]:
    """`count` framed inputs of exactly `length` tokens (special tokens included)."""
    special = len(encoder.prefix_ids) + len(encoder.suffix_ids)
    base = encoder.content_ids([FILLER])[0]
    need = length - special
    content = (base * (need // len(base) + 1))[:need]
    # vary the start so the inputs are not identical (no cache or dedup could shortcut them)
    return [encoder.frame(content[i % len(base) :] + content[: i % len(base)]) for i in range(count)]


@contextlib.contextmanager
def forward_batch(encoder, batch_size: int, length: int) -> Iterator[int]:
    """Let `batch_size` inputs of `length` tokens run in one forward pass where the backend allows."""
    saved = {
        name: getattr(encoder, name)
        for name in ("max_batch_size", "max_batch_tokens")
        if hasattr(encoder, name)
    }
    try:
        if "max_batch_size" in saved:
            encoder.max_batch_size = batch_size
        tokens = saved.get("max_batch_tokens")
        effective = batch_size if tokens is None else max(1, min(batch_size, tokens // length))
        yield effective
    finally:
        for name, value in saved.items():
            setattr(encoder, name, value)


def parameter_bytes(encoder) -> int | None:
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return None
    return int(sum(p.numel() * p.element_size() for p in model.parameters()))


def run(ctx: EvalContext, options: ThroughputOptions) -> TaskResult:
    encoder = ctx.encoder
    result = TaskResult("throughput", ctx.model, headline="docs_per_s")
    backend = {
        "backend": type(encoder).__name__,
        "device": str(getattr(encoder, "device", "cpu")),
        "dtype": str(getattr(getattr(encoder, "model", None), "dtype", "")).replace("torch.", ""),
        "threads": _threads(),
    }
    params = parameter_bytes(encoder)
    with timed(result):
        xs, docs_rate, token_rate, peaks = [], [], [], []
        for length in options.lengths:
            if length > encoder.max_tokens:
                result.notes.append(
                    f"length {length}: above {ctx.model}'s {encoder.max_tokens}-token limit; skipped"
                )
                continue
            count = options.batch_size * options.batches
            inputs = synthetic_inputs(encoder, length, count)
            with forward_batch(encoder, options.batch_size, length) as effective:
                encoder.embed_framed(
                    inputs[: min(2, options.batch_size)], dimensions=ctx.dimensions
                )  # warm-up
                before = _rss()
                meter = ResidentMemoryWatch()
                with (
                    ctx.progress.track(f"throughput {length} tokens ({ctx.model})", count) as advance,
                    meter.watch(),
                ):
                    start = time.perf_counter()
                    for i in range(0, count, options.batch_size):
                        encoder.embed_framed(inputs[i : i + options.batch_size], dimensions=ctx.dimensions)
                        advance(options.batch_size)
                    seconds = time.perf_counter() - start
            metrics = {
                "docs_per_s": count / seconds,
                "tokens_per_s": count * length / seconds,
                "peak_rss_mib": meter.peak / MIB,
                "rss_growth_mib": max(0, meter.peak - before) / MIB,
            }
            result.records.append(
                Record(
                    "throughput",
                    ctx.model,
                    "synthetic",
                    metrics,
                    mode=f"len={length}",
                    info={
                        **backend,
                        "length": length,
                        "batch_size": options.batch_size,
                        "forward_batch": effective,
                        "docs": count,
                        "seconds": seconds,
                        "parameter_mib": params / MIB if params else None,
                    },
                )
            )
            xs.append(length)
            docs_rate.append(metrics["docs_per_s"])
            token_rate.append(metrics["tokens_per_s"])
            peaks.append(metrics["peak_rss_mib"])
        if xs:
            label = f"batch {options.batch_size}"
            result.curves.append(
                Curve(label, xs, docs_rate, "input tokens", "docs/s", panel="docs/s", xlog=True)
            )
            result.curves.append(
                Curve(label, xs, token_rate, "input tokens", "tokens/s", panel="tokens/s", xlog=True)
            )
            result.curves.append(
                Curve(label, xs, peaks, "input tokens", "peak RSS (MiB)", panel="memory", xlog=True)
            )
        result.notes.append(
            f"backend {backend['backend']} on {backend['device']} ({backend['dtype'] or 'default dtype'}, "
            f"{backend['threads']} threads)" + (f"; parameters {params / MIB:.0f} MiB" if params else "")
        )
    return result


def _threads() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1
