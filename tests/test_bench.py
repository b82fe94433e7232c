"""`embedhub bench`: the whole command on the tiny random Qwen3, its errors, and its parts."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedhub.bench.flops import ForwardCost, forward_cost
from embedhub.bench.report import plot
from embedhub.bench.runner import INFINITY_WORKER, child_environment, probe_infinity, run_child
from embedhub.bench.texts import build_text_sets, read_corpus, synthetic_documents
from embedhub.cli import app
from embedhub.models.backends import auto_backend
from embedhub.models.cpu import detect_cpu
from embedhub.models.loading import load_tokenizer, resolve, spec_from_folder
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def bench_report(runner, tiny_model_dir, tmp_path_factory):
    """One quick run: sentence-transformers and embedhub torch, Infinity asked for but absent."""
    folder = tmp_path_factory.mktemp("bench")
    arguments = [
        "bench",
        "--models",
        str(tiny_model_dir),
        "--backends",
        "sentence-transformers,torch,torch-bf16,infinity",
    ]
    arguments += ["--lengths", "24", "--batch-sizes", "1,2", "--docs", "2", "--seconds", "0.05"]
    arguments += ["--corpus", str(folder / "absent.jsonl"), "--json", str(folder / "bench.json")]
    arguments += ["--plot", str(folder / "bench.png")]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return json.loads((folder / "bench.json").read_text()), result.stdout, folder


def test_bench_reports_every_cell_with_positive_numbers(bench_report, tiny_model_dir):
    report, _, _ = bench_report
    assert report["texts"].startswith("synthetic English")  # the corpus path given is absent
    assert set(report["peaks"]["gflops"]) == {"fp32", "bf16", "int8"}
    assert all(value > 0 for value in report["peaks"]["gflops"].values())
    model = report["models"]["random-qwen3-tiny"]
    assert model["forward_cost"] == {"linear_parameters": 73728, "layers": 2, "attention_width": 64}
    assert model["lengths"] == [{"length": 24, "requested": [24], "tokens_per_text": 24.0, "texts": 2}]
    default = auto_backend(spec_from_folder(tiny_model_dir))
    cells = {(row["label"], row["batch_size"]) for row in report["rows"]}
    assert cells == {
        (label, size)
        for label in ("sentence-transformers fp32", "embedhub torch", "embedhub torch-bf16")
        for size in (1, 2)
    }
    for row in report["rows"]:
        assert row["tokens_per_doc"] == 24.0, row  # every peer ran exactly the asked length
        for key in (
            "docs_per_second",
            "tokens_per_second",
            "peak_rss_mb",
            "achieved_gflops",
            "share_of_peak",
        ):
            assert row[key] > 0, (key, row)
        assert row["precision"] == ("bf16" if row["label"].endswith("bf16") else "fp32")
        assert not row["capped_at_model_max"]
        assert row["ratio_to_fastest_infinity"] is None  # Infinity did not run
        # a Qwen3 folder runs torch-bf16 by default where the CPU has it, torch elsewhere
        assert row["default_backend"] == (row["label"] == f"embedhub {default}")
        if row["peer"] == "sentence-transformers":
            assert row["ratio_to_sentence_transformers"] == 1.0
        else:
            assert row["ratio_to_sentence_transformers"] > 0
    runs = {run["backend"]: run for run in report["runs"]}
    assert runs["sentence-transformers"]["texts_with_other_token_counts"] == 0
    assert all(
        runs[name]["status"] == "ok" and runs[name]["peak_rss_mb"] > 0
        for name in ("sentence-transformers", "torch", "torch-bf16")
    )


def test_bench_reports_infinity_skipped_with_reason(bench_report):
    report, stdout, _ = bench_report
    infinity = [run for run in report["runs"] if run["peer"] == "infinity"]
    assert infinity == [
        {
            "model": "random-qwen3-tiny",
            "peer": "infinity",
            "backend": "infinity",
            "label": "Infinity",
            "status": "skipped",
            "reason": infinity[0]["reason"],
        }
    ]
    assert "no --infinity-python given" in infinity[0]["reason"]
    assert "- random-qwen3-tiny / Infinity: skipped (no --infinity-python given" in stdout


def test_bench_prints_table_and_writes_plot(bench_report, tiny_model_dir):
    _, stdout, folder = bench_report
    assert "| model | tokens | batch | peer | vs sentence-transformers fp32 |" in stdout
    # the backend `auto` runs for this model here is marked, and only that one
    default = auto_backend(spec_from_folder(tiny_model_dir))
    assert f"| random-qwen3-tiny | 24 | 2 | **embedhub {default}** (default) | " in stdout
    assert stdout.count("(default)") == 2  # batch sizes 1 and 2
    assert (folder / "bench.png").stat().st_size > 1000
    # the CPU class decides the default: every report names it, with the flags behind it
    cpu = detect_cpu()
    assert f"CPU: {cpu.model}, class {cpu.cpu_class} (flags: " in stdout
    assert json.loads((folder / "bench.json").read_text())["machine"]["cpu"]["class"] == cpu.cpu_class


def test_plot_without_matplotlib_says_so(bench_report, monkeypatch, tmp_path):
    report, _, _ = bench_report
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    message = plot(report, tmp_path / "bench.png")
    assert message.startswith("no plot: matplotlib is not installed")
    assert not (tmp_path / "bench.png").exists()


def test_unknown_backend_lists_the_choices(runner):
    result = runner.invoke(app, ["bench", "--backends", "torch,turbo"])
    assert result.exit_code == 2
    assert (
        "unknown backend 'turbo' for bench; choose from: sentence-transformers, infinity, torch"
        in result.stderr
    )


def test_unknown_model_lists_the_choices(runner):
    result = runner.invoke(app, ["bench", "--models", "no-such-model", "--backends", "torch"])
    assert result.exit_code == 2
    assert "no-such-model" in result.stderr
    for choice in (
        "all-MiniLM-L6-v2",
        "multilingual-e5-small-q4",
        "random-qwen3-0.6B",
        "a local model folder",
    ):
        assert choice in result.stderr


def test_unknown_random_shape_lists_the_choices(runner):
    result = runner.invoke(app, ["bench", "--models", "random-qwen3-9B", "--backends", "torch"])
    assert result.exit_code == 2
    assert "unknown random model 'random-qwen3-9B'" in result.stderr and "random-qwen3-tiny" in result.stderr


def test_bad_lengths_are_refused(runner):
    result = runner.invoke(app, ["bench", "--lengths", "128,zero"])
    assert result.exit_code == 2 and "--lengths takes positive whole numbers" in result.stderr


def test_infinity_probe_says_why_it_is_skipped(tmp_path):
    assert probe_infinity(None) == (
        False,
        "no --infinity-python given (Infinity needs its own venv: docs/performance.md)",
    )
    ready, reason = probe_infinity(tmp_path / "python")
    assert not ready and reason == f"--infinity-python {tmp_path / 'python'} does not exist"
    ready, reason = probe_infinity(Path(sys.executable))  # no infinity_emb here
    assert not ready and "infinity_emb does not import" in reason


def test_a_failing_child_is_reported_not_fatal(tmp_path):
    crash = run_child([sys.executable, "-c", "import sys; sys.exit(3)"], {}, tmp_path, "crash", 60, {})
    assert crash["error"].startswith("exited with status 3 without a result")
    hang = run_child([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path, "hang", 0.5, {})
    assert hang["error"] == "timed out after 0 s (--timeout)"


def test_texts_have_exactly_the_asked_tokens_and_stop_at_the_model_maximum(settings):
    resolved = resolve("all-MiniLM-L6-v2", settings)
    tokenizer = load_tokenizer(resolved.folder, resolved.spec, settings)
    sets = build_text_sets(synthetic_documents(50), tokenizer, resolved.spec, [128, 512], 3)
    assert [(text_set.length, text_set.capped) for text_set in sets] == [(128, False), (256, True)]
    for text_set in sets:
        assert text_set.tokens == (text_set.length,) * 3
        encoded = [len(tokenizer.encode(text).ids) for text in text_set.formatted]
        assert encoded == [text_set.length] * 3  # checked again by the tokenizer itself
        assert len(set(text_set.texts)) == 3


def test_texts_from_scifact_with_a_document_template(settings):
    """e5-style 'passage: ' is part of what the model sees, so it counts toward the length."""
    corpus = shared_data("beir-scifact", "corpus.jsonl")
    resolved = resolve("all-MiniLM-L6-v2", settings)
    spec = dataclasses.replace(resolved.spec, document_template="passage: {text}")
    tokenizer = load_tokenizer(resolved.folder, spec, settings)
    sets = build_text_sets(read_corpus(corpus)[:40], tokenizer, spec, [100, 2048], 2)
    assert [text_set.length for text_set in sets] == [100, 256]
    for text_set in sets:
        assert all(text.startswith("passage: ") for text in text_set.formatted)
        assert not any(text.startswith("passage: ") for text in text_set.texts)
        assert [len(tokenizer.encode(text).ids) for text in text_set.formatted] == [text_set.length] * 2


def test_forward_cost_counts_linear_weights_and_attention(tiny_model_dir):
    cost = forward_cost(tiny_model_dir)
    # 2 layers x (q 64x64 + k 64x32 + v 64x32 + o 64x64 + gate, up, down 3 x 64x128)
    assert cost == ForwardCost(
        linear_parameters=2 * (4096 + 2048 + 2048 + 4096 + 3 * 8192), layers=2, attention_width=64
    )
    assert cost.flops(10) == 2 * 73728 * 10 + 4 * 2 * 10**2 * 64


FAKE_INFINITY = """
import asyncio
import logging

__version__ = "0.0.0-fake"


class EngineArgs:
    def __init__(self, **options):
        self.options = options


class AsyncEmbeddingEngine:
    @classmethod
    def from_args(cls, args):
        engine = cls()
        engine.args = args.options
        return engine

    async def astart(self):
        self.started = True

    async def astop(self):
        self.started = False

    async def embed(self, sentences):
        if not self.started:
            raise RuntimeError("embed before astart")
        if "fail" in sentences:  # as Infinity does: its batch thread logs, the request never ends
            logging.getLogger("infinity_emb").error("batch failed")
            await asyncio.Future()
        return [[1.0, 0.0] for _ in sentences], sum(len(text) for text in sentences)  # characters
"""


def test_infinity_child_times_the_engine_it_is_given(tmp_path):
    """The Infinity child, run against a stand-in `infinity_emb` (the real one lives in its own
    venv): the job/result protocol, token counts from the job (Infinity's `usage` counts
    characters), and a batch that fails inside Infinity ends the child instead of hanging it."""
    (tmp_path / "fake" / "infinity_emb").mkdir(parents=True)
    (tmp_path / "fake" / "infinity_emb" / "__init__.py").write_text(FAKE_INFINITY)
    view = tmp_path / "view"
    view.mkdir()
    job = {
        "kind": "infinity",
        "engine": "torch",
        "threads": None,
        "batch_sizes": [1, 2],
        "docs": 2,
        "seconds": 0.01,
        "model": {"name": "m", "view": str(view)},
        "text_sets": [{"length": 4, "texts": ["one two three", "four five six"], "tokens": [4, 4]}],
    }
    environment = child_environment({"PYTHONPATH": str(tmp_path / "fake")})
    worker = [sys.executable, str(INFINITY_WORKER)]
    result = run_child(worker, job, tmp_path, "infinity", 60, environment)
    assert "error" not in result, result
    assert result["label"] == "Infinity (torch)" and result["version"].startswith("infinity-emb 0.0.0-fake")
    cells = [(cell["batch_size"], cell["docs"], cell["tokens"]) for cell in result["cells"]]
    assert cells == [(1, 2, 8), (2, 2, 8)]
    assert result["peak_rss_mb"] > 0
    job["text_sets"] = [{"length": 1, "texts": ["fail"], "tokens": [1]}]
    failed = run_child(worker, job, tmp_path, "infinity-fails", 60, environment)
    assert failed["error"] == "RuntimeError: Infinity failed on a batch: batch failed"


def test_infinity_optimum_is_skipped_on_qwen3_with_the_reason(tiny_model_dir, settings, tmp_path):
    from embedhub.bench.runner import OPTIMUM_DECODER, BenchOptions, _run_infinity, resolve_model

    model = resolve_model(str(tiny_model_dir), settings)
    run = _run_infinity(model, "optimum", {}, tmp_path, BenchOptions(infinity_python=Path("/no/python")))
    assert run == {
        "model": "random-qwen3-tiny",
        "peer": "infinity",
        "backend": "optimum",
        "label": "Infinity (optimum)",
        "skipped": OPTIMUM_DECODER,
    }


def test_json_report_names_no_machine_paths(tmp_path, monkeypatch):
    import sys
    import tempfile
    from pathlib import Path

    from embedhub.bench.report import portable

    monkeypatch.chdir(tmp_path)
    venv, home = Path(sys.prefix).resolve(), Path.home().resolve()
    scratch = Path(tempfile.gettempdir()).resolve()
    report = {
        "models": {"m": {"folder": f"{venv}/lib/site-packages/x/model", "cache": f"{home}/.cache/m"}},
        "command": f"embedhub bench --infinity-python {scratch}/inf/bin/python --json {tmp_path}/r.json",
        "runs": [{"path": f"{tmp_path}/a", "other": f"{scratch}-like/not-a-child", "n": 3}],
    }
    cleaned = portable(report)
    assert cleaned["models"]["m"] == {"folder": "$VENV/lib/site-packages/x/model", "cache": "~/.cache/m"}
    assert cleaned["command"] == "embedhub bench --infinity-python $TMPDIR/inf/bin/python --json ./r.json"
    assert cleaned["runs"] == [{"path": "./a", "other": f"{scratch}-like/not-a-child", "n": 3}]
