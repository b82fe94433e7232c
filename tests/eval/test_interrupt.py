"""Ctrl-C during an evaluation's knowledge-base ingest stops the run at once: a real `embedhub
eval retrieval` process is sent SIGINT while the second dataset's corpus is being embedded (a
forward pass made to last two minutes, as a big model's can on two cores). It exits 130 without
waiting for that forward pass, says in one line what it kept and the command that resumes, and
the journal still holds the first dataset's finished parts; the resume command finishes the run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import embedhub
from embedhub.eval.journal import ROWS_FILE
from tests.eval.conftest import _jsonl, build_beir, sentence

#: `embedhub` with the knowledge base's embedding step slowed down for the corpus that holds
#: "tortoise" (the second dataset's): it touches a marker file, then sleeps
SLOW_EMBEDHUB = """
import sys, time
from pathlib import Path

import embedhub.kb.ingest as ingest

original = ingest.embed_chunks
marker = Path(sys.argv[1])


def slow(encoder, chunks, *arguments, **options):
    if any("tortoise" in chunk.text for chunk in chunks):
        marker.touch()
        time.sleep(120)
    return original(encoder, chunks, *arguments, **options)


ingest.embed_chunks = slow
from embedhub.cli import app

sys.argv = ["embedhub", *sys.argv[2:]]
app()
"""


def test_ctrl_c_during_the_ingest_stops_at_once_and_keeps_the_finished_parts(tmp_path, tiny_model_dir):
    root = tmp_path / "data"
    build_beir(root / "beir-scifact")
    build_beir(root / "cmrc2018-zh-retrieval")
    corpus = [
        {"_id": f"d{i}", "title": f"Tortoise {i}", "text": f"tortoise {sentence(i, 8)}"} for i in range(12)
    ]
    _jsonl(root / "cmrc2018-zh-retrieval" / "corpus.jsonl", corpus)
    out, marker, program = tmp_path / "out", tmp_path / "embedding-started", tmp_path / "slow_embedhub.py"
    program.write_text(SLOW_EMBEDHUB)
    arguments = [
        "eval", "retrieval", "--model", str(tiny_model_dir), "--data", str(root), "--out", str(out),
        "--modes", "kb-lexical,kb-dense", "--datasets", "scifact,cmrc2018", "--no-plots", "-q", "--fresh",
    ]  # fmt: skip
    source = str(Path(embedhub.__file__).parents[1])
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": source}
    process = subprocess.Popen(
        [sys.executable, str(program), str(marker), *arguments],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"the second ingest never started: {process.communicate(timeout=5)}"
        process.send_signal(signal.SIGINT)
        # the forward pass in flight sleeps 120 s: waiting for it would run past this
        _, stderr = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    rows = [json.loads(line) for line in (out / ROWS_FILE).read_text().splitlines()]
    assert [(row["config"]["dataset"], row["config"]["mode"]) for row in rows] == [
        ("scifact", "kb-lexical"),
        ("scifact", "kb-dense"),
    ]
    line = stderr.strip().splitlines()[-1]
    resume = [argument for argument in arguments if argument != "--fresh"]
    assert line == (
        f"stopped (Ctrl-C): 2 finished part(s) kept in {out / ROWS_FILE}, their report in "
        f"{out / 'report.md'}; resume with: {shlex.join(['embedhub', *resume])}"
    )
    assert "Ctrl-C" in json.loads((out / "results.json").read_text())["meta"]["stopped"]

    # the command it names resumes: the first dataset's parts are taken, the rest computed
    command = shlex.split(line.partition("resume with: ")[2])
    assert command[0] == "embedhub"
    finished = subprocess.run(
        [sys.executable, "-m", "embedhub.cli", *command[1:]],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr
    entries = [json.loads(line) for line in (out / ROWS_FILE).read_text().splitlines()]
    parts = [entry["config"]["dataset"] for entry in entries if entry["kind"] == "part"]
    assert parts == ["scifact"] * 2 + ["cmrc2018"] * 2  # the first two kept, not computed again
    assert entries[-1]["kind"] == "task"
