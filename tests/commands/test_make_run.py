"""`make run` on a fresh machine installs for minutes with pip quiet: it must say so before it
starts, name each step, and say when the server starts (`make -n` shows the recipe unrun)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_first_make_run_says_what_it_installs_and_when_it_starts(tmp_path):
    dry = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'fresh-venv'}"], cwd=ROOT, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    announce = next(i for i, line in enumerate(lines) if "about 3 GB" in line and "once" in line)
    steps = [i for i, line in enumerate(lines) if "embedhub: [" in line]
    first_pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert announce < first_pip and len(steps) == 3
    start = next(i for i, line in enumerate(lines) if "starting the server" in line)
    serve = next(i for i, line in enumerate(lines) if line.rstrip().endswith("embedhub serve"))
    assert steps[-1] < start < serve


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_installed_make_run_does_not_reinstall(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stamp = venv / ".installed"
    stamp.touch()
    dry = subprocess.run(["make", "-n", "run", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "about 3 GB" not in dry.stdout and "pip install" not in dry.stdout
    assert "starting the server" in dry.stdout
