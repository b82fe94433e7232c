"""How long `embedhub kb create` takes for an empty collection: the command as it is (the model's
facts from its spec and tokenizer framing, no weights) against the same create after loading
the model to learn them (what it did before), each a fresh process creating a new collection in
one scratch EMBEDHUB_HOME (its model cache warmed first), median of `--runs`.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/kb_create.py --runs 3 [--model NAME|FOLDER]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the create of before: the model loaded to learn its width and framing
LOADING_CREATE = """
import sys
from embedhub.config import Settings
from embedhub.kb.collection import KnowledgeBase
from embedhub.models.backends import load_encoder
from embedhub.models.loading import resolve
settings = Settings()
reference = sys.argv[2] if len(sys.argv) > 2 else settings.model
encoder = load_encoder(reference, settings)
stable = reference if reference != "auto" else resolve(reference, settings).spec.name
KnowledgeBase(settings).create(sys.argv[1], encoder, model_reference=stable)
"""


def timed(command: list[str], home: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run: on a shared machine the wall time also
    counts the wait for a core, the CPU time only this command's work."""
    environment = {**os.environ, "EMBEDHUB_HOME": str(home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None)
    arguments = parser.parse_args()
    model = [arguments.model] if arguments.model else []
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        # warm the model cache once (a packed wheel model is converted there on first load)
        timed([sys.executable, "-c", LOADING_CREATE, "warm", *model], home)
        commands = {
            "loading the model (before)": lambda name: [sys.executable, "-c", LOADING_CREATE, name, *model],
            "facts only (kb create now)": lambda name: [
                *(sys.executable, "-m", "embedhub.cli", "kb", "create", name),
                *(["--model", arguments.model] if arguments.model else []),
            ],
        }
        medians = {}
        for number, (label, command) in enumerate(commands.items()):
            runs = [timed(command(f"notes-{number}-{run}"), home) for run in range(arguments.runs)]
            walls, cpus = [wall for wall, _ in runs], [cpu for _, cpu in runs]
            medians[label] = statistics.median(walls), statistics.median(cpus)
            print(
                f"{label}: median wall {medians[label][0]:.2f} s ({', '.join(f'{t:.2f}' for t in walls)}), "
                f"median CPU {medians[label][1]:.2f} s ({', '.join(f'{t:.2f}' for t in cpus)})"
            )
        (wall_before, cpu_before), (wall_after, cpu_after) = medians.values()
        print(
            f"ratio: {wall_before / wall_after:.1f}x less wall time, {cpu_before / cpu_after:.1f}x less CPU"
        )


if __name__ == "__main__":
    main()
