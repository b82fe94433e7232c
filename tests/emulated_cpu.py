"""Run under `qemu-x86_64 -cpu Haswell` by tests/test_cpu.py and tests/test_gguf.py: an AVX2
CPU without AVX-512 or VNNI, whatever CPU runs the tests. It loads int8 ONNX files or .gguf files
built beforehand (building is too slow under emulation) and prints, as JSON, each file's worst
cosine to the float32 vectors of tests/test_backends.py's TEXTS.

Usage: python tests/emulated_cpu.py MODEL_FOLDER REFERENCE.npy FILE.onnx|FILE.gguf [...]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from embedhub.config import Settings
from embedhub.models.backends import load_encoder
from embedhub.models.loading import load_tokenizer, spec_from_folder
from embedhub.models.onnx_runtime import OnnxEncoder
from tests.test_backends import TEXTS


def main(folder: Path, reference: Path, files: list[Path]) -> dict[str, float]:
    settings = Settings(threads=1)
    spec = spec_from_folder(folder)
    tokenizer = load_tokenizer(folder, spec, settings)
    expected = np.load(reference)
    worst = {}
    for path in files:
        if path.suffix == ".gguf":
            encoder = load_encoder(str(path), settings.model_copy(update={"backend": "gguf"}))
        else:
            encoder = OnnxEncoder(spec, folder, tokenizer, path, settings)
        vectors = encoder.encode(TEXTS).vectors
        worst[str(path)] = float(np.min(np.sum(vectors * expected, axis=1)))
    return worst


QEMU = shutil.which("qemu-x86_64")
ROOT = Path(__file__).resolve().parents[1]


def run_emulated(folder: Path, reference: Path, files: list[Path]) -> dict[str, float]:
    """`main` in a Python run by qemu's Haswell model (an AVX2 CPU); raises when it fails."""
    result = subprocess.run(
        [QEMU, "-cpu", "Haswell", sys.executable, __file__, str(folder), str(reference), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"the emulated run failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])))
