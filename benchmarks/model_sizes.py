"""What a Qwen3-Embedding size costs on this CPU: tokens/s at one length and peak memory, per
backend and per GGUF file type, each in a process of its own (so peak RSS is that run's alone).

The weights are random (`random-qwen3-SHAPE`, the real shape and compute cost; the vectors mean
nothing), so this answers "how fast, how much memory", never "how good". GGUF files are made
from the same folder with llama.cpp's converter (`make install-gguf` puts it in the venv) and,
for K-quants, llama.cpp's own quantiser through llama-cpp-python.

    python benchmarks/model_sizes.py --shape 4B --backends torch,torch-bf16 --gguf q8_0,q4_k_m \
        --length 512 --batch 4 --json docs/model-sizes-4B.json

Run it alone on the machine: every figure is wall time of one timed batch after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from embedhub.bench.runner import resolve_model
from embedhub.bench.texts import build_text_sets, synthetic_documents
from embedhub.config import Settings
from embedhub.models.cpu import detect_cpu

CONVERTER = Path(sys.prefix) / "share" / "llama.cpp" / "convert_hf_to_gguf.py"
#: llama.cpp's file types by the names people use (llama_ftype in llama.h)
K_QUANTS = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}


def gguf_file(folder: Path, file_type: str) -> Path:
    """`folder` converted to a .gguf of `file_type` (q8_0, f16 and f32 directly; K-quants from an
    f16 conversion), made once beside the other cached files."""
    out = folder.parent / f"{folder.name}-{file_type}.gguf"
    if out.exists():
        return out
    if file_type in K_QUANTS:
        import llama_cpp

        source = gguf_file(folder, "f16")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = K_QUANTS[file_type]
        params.nthread = os.cpu_count() or 1
        if llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) != 0:
            raise RuntimeError(f"llama.cpp could not quantise {source} to {file_type}")
        return out
    subprocess.run(
        [sys.executable, str(CONVERTER), str(folder), "--outtype", file_type, "--outfile", str(out)],
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return out


def child(reference: str, backend: str, folder: Path, length: int, batch: int) -> dict:
    """Load, warm up on two texts, time one batch; peak RSS of this process."""
    from embedhub.models.backends import load_encoder
    from embedhub.models.loading import load_tokenizer, spec_from_folder

    settings = Settings(backend=backend)
    spec = spec_from_folder(folder)
    tokenizer = load_tokenizer(folder, spec, settings)
    (text_set,) = build_text_sets(synthetic_documents(batch * 4), tokenizer, spec, [length], batch)
    started = time.perf_counter()
    encoder = load_encoder(reference, settings)
    load_seconds = time.perf_counter() - started
    encoder.encode(text_set.texts[:2])
    started = time.perf_counter()
    tokens = encoder.encode(text_set.texts[:batch]).prompt_tokens
    seconds = time.perf_counter() - started
    return {
        "backend": encoder.backend,
        "reason": encoder.backend_reason,
        "tokens_per_second": round(tokens / seconds, 1),
        "batch_seconds": round(seconds, 2),
        "load_seconds": round(load_seconds, 1),
        **memory_mb(),
    }


def memory_mb() -> dict[str, int]:
    """This process's memory in MB: `peak_rss_mb` (VmHWM: the most it ever had resident, memory
    mapped weight files included, which the kernel can drop and read again) and, after the
    timed batch, `resident_mb` (VmRSS) and `private_mb` (RssAnon: memory it cannot give back
    without swapping). Not getrusage's ru_maxrss: Linux keeps that across exec, so a child of a
    parent that once held a 16 GB model reported 16 GB."""
    fields = {"VmHWM:": "peak_rss_mb", "VmRSS:": "resident_mb", "RssAnon:": "private_mb"}
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() else ""
        if key in fields:
            found[fields[key]] = round(int(line.split()[1]) / 1024)
    return found or {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="4B")
    parser.add_argument("--backends", default="torch,torch-bf16")
    parser.add_argument("--gguf", default="q8_0,q4_k_m")
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--json", type=Path)
    child_metavar = ("REFERENCE", "BACKEND", "FOLDER")
    parser.add_argument("--child", nargs=3, metavar=child_metavar, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        reference, backend, folder = options.child
        print(json.dumps(child(reference, backend, Path(folder), options.length, options.batch)))
        return
    settings = Settings()
    folder = resolve_model(f"random-qwen3-{options.shape}", settings).folder
    runs = [(str(folder), name) for name in options.backends.split(",") if name]
    for file_type in (name for name in options.gguf.split(",") if name):
        started = time.perf_counter()
        path = gguf_file(folder, file_type)
        took = time.perf_counter() - started
        print(f"{file_type}: {path.stat().st_size / 1e9:.2f} GB, ready in {took:.0f} s", flush=True)
        runs.append((str(path), "gguf"))
    rows = []
    for reference, backend in runs:
        sizes = ["--length", str(options.length), "--batch", str(options.batch)]
        command = [sys.executable, __file__, "--child", reference, backend, str(folder), *sizes]
        result = subprocess.run(command, capture_output=True, text=True)
        label = Path(reference).name if backend == "gguf" else backend
        if result.returncode != 0:
            rows.append({"run": label, "error": result.stderr.strip().splitlines()[-1:]})
        else:
            rows.append({"run": label, **json.loads(result.stdout.strip().splitlines()[-1])})
        print(json.dumps(rows[-1]), flush=True)
    report = {
        "shape": options.shape,
        "length": options.length,
        "batch": options.batch,
        "cpu": detect_cpu(settings.cpu_class).as_dict(),
        "load_average_before_last_run": os.getloadavg(),
        "rows": rows,
    }
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
