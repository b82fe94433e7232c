"""The CLI contract other issues rely on (`embed`, `tokenize`, `models list|make-random`)."""

from __future__ import annotations

import json
import os
import signal
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from embedhub.cli import app
from tests.live_server import free_port


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_embed_json_contract(runner, tiny_model_dir, tiny_encoder):
    result = runner.invoke(
        app,
        [
            "embed",
            "hello",
            "world",
            "--model",
            str(tiny_model_dir),
            "--query",
            "--dimensions",
            "32",
            "--json",
            "--backend",
            "torch",  # the float32 reference below; auto would run a Qwen3 folder in bfloat16
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "random-qwen3-tiny" and payload["dimensions"] == 32
    assert [item["index"] for item in payload["data"]] == [0, 1]
    vectors = np.array([item["embedding"] for item in payload["data"]], dtype=np.float32)
    expected = tiny_encoder.encode(["hello", "world"], kind="query", dimensions=32)
    np.testing.assert_allclose(vectors, expected.vectors, atol=1e-6)
    assert payload["usage"]["prompt_tokens"] == expected.prompt_tokens


def test_embed_reads_stdin_lines(runner, tiny_model_dir):
    result = runner.invoke(
        app, ["embed", "--model", str(tiny_model_dir), "--json"], input="first\n\nsecond\n"
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["data"]) == 2


def test_tokenize_json_shows_endoftext(runner, tiny_model_dir):
    result = runner.invoke(app, ["tokenize", "Hello world", "--model", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ids"] == [9707, 1879, 151643]
    assert payload["tokens"] == ["Hello", "Ġworld", "<|endoftext|>"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["embed", "x", "--model", "no-such-model"], "unknown model"),
        (["embed", "x", "--dimensions", "8", "--model", "TINY"], "outside"),
        (["embed", "  ", "--model", "TINY"], "empty"),
    ],
)
def test_errors_exit_2_on_stderr(runner, tiny_model_dir, arguments, message):
    arguments = [str(tiny_model_dir) if a == "TINY" else a for a in arguments]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_models_list_json(runner):
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    assert rows["all-MiniLM-L6-v2"]["available"] is True
    multilingual = rows["multilingual-e5-small-q4"]
    assert multilingual["max_tokens"] == 512 and multilingual["mrl"] == "no"
    assert rows["Qwen3-Embedding-4B"]["dimensions"] == 2560
    rerankers = {row["name"]: row for row in json.loads(result.stdout)["rerankers"]}
    assert set(rerankers) == {"Qwen3-Reranker-0.6B", "Qwen3-Reranker-4B", "Qwen3-Reranker-8B"}
    assert rerankers["Qwen3-Reranker-0.6B"]["max_tokens"] == 8192


def test_models_list_finds_a_reranker_in_the_model_dirs(runner, tiny_reranker_dir, tmp_path):
    (tmp_path / "Qwen3-Reranker-0.6B").symlink_to(tiny_reranker_dir, target_is_directory=True)
    result = runner.invoke(app, ["models", "list"], env={"EMBEDHUB_MODEL_DIRS": str(tmp_path)})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "Qwen3-Reranker-0.6B" in line)
    assert "not on this machine" not in line and "Qwen3-Reranker-8B" in result.stdout


@pytest.mark.parametrize("columns", ["80", "160"])
def test_models_list_never_cuts_a_name_or_a_backend(runner, columns):
    """The name is what a user types next (`serve --model NAME`): on an 80-column terminal it was
    drawn as `Qwen3-Em…`. Names and backends are whole at any width; languages only when wide."""
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": columns, "EMBEDHUB_BACKEND": "torch"})
    assert result.exit_code == 0, result.output
    assert "…" not in "".join(line for line in result.stdout.splitlines() if "torch" in line)
    names = ("Qwen3-Embedding-0.6B", "multilingual-e5-small-q4", "all-MiniLM-L6-v2", "Qwen3-Reranker-0.6B")
    assert all(name in result.stdout for name in names)
    assert ("languages" in result.stdout) == (columns == "160")


def test_make_random_writes_loadable_model(runner, tmp_path, tiny_encoder):
    out = tmp_path / "again"
    result = runner.invoke(app, ["models", "make-random", "--shape", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "meaningless" in result.stdout
    marker = json.loads((out / "embedhub.json").read_text())
    assert marker["random_weights"] is True
    again = runner.invoke(app, ["embed", "same seed", "--model", str(out), "--json", "--backend", "torch"])
    vector = np.array(json.loads(again.stdout)["data"][0]["embedding"])
    np.testing.assert_allclose(vector, tiny_encoder.encode(["same seed"]).vectors[0], atol=1e-6)
    bad = runner.invoke(app, ["models", "make-random", "--shape", "huge", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "tiny, 0.6B, 4B" in bad.stderr


@pytest.fixture
def no_server_start(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("the server must not start")

    monkeypatch.setattr("uvicorn.Server.run", refuse)


def test_model_dirs_accepts_a_plain_path_list(runner, tmp_path, tiny_model_dir):
    """EMBEDHUB_MODEL_DIRS=/some/dir, as people write it (it used to end in a 135-line traceback)."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "Qwen3-Embedding-0.6B").symlink_to(tiny_model_dir, target_is_directory=True)
    for value in (f"{first}{os.pathsep}{second}", str(second), json.dumps([str(first), str(second)])):
        result = runner.invoke(app, ["models", "list", "--json"], env={"EMBEDHUB_MODEL_DIRS": value})
        assert result.exit_code == 0, result.output
        rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
        assert rows["Qwen3-Embedding-0.6B"]["source"] == "model-dir", value


@pytest.mark.parametrize(
    ("variable", "value", "command", "expected"),
    [
        ("EMBEDHUB_PORT", "abc", ["serve"], "valid integer"),
        ("EMBEDHUB_PORT", "70000", ["serve"], "65535"),
        ("EMBEDHUB_DTYPE", "fp8", ["models", "list"], "'float32', 'bfloat16' or 'float16'"),
        ("EMBEDHUB_ALIASES", "small=minilm", ["serve"], "JSON object"),
        ("EMBEDHUB_MODEL_DIRS", '["/x"', ["models", "list"], "JSON list"),
        ("EMBEDHUB_CACHE_ON_DISK", "maybe", ["embed", "x"], "boolean"),
        ("EMBEDHUB_MAX_BATCH_SIZE", "0", ["embed", "x"], "greater than or equal to 1"),
        ("EMBEDHUB_TRUNCATE", "sometimes", ["serve"], "boolean"),
    ],
)
def test_bad_settings_are_one_line_exit_2(runner, no_server_start, variable, value, command, expected):
    result = runner.invoke(app, command, env={variable: value})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{variable}={value!r}" in lines[0] and expected in lines[0]
    assert "Traceback" not in result.output


def test_bad_api_keys_setting_hides_the_value(runner, no_server_start):
    result = runner.invoke(app, ["serve"], env={"EMBEDHUB_API_KEYS": '["secret-key'})
    assert result.exit_code == 2
    assert "EMBEDHUB_API_KEYS=<hidden>" in result.stderr and "secret-key" not in result.stderr


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("Qwen3-Embedding-8B", "not on this machine"),
        ("./no/such/folder", "unknown model"),
    ],
)
def test_serve_refuses_models_it_cannot_find_before_starting(runner, no_server_start, model, message):
    from embedhub.config import Settings
    from embedhub.models.loading import locate
    from embedhub.models.registry import REGISTRY

    if model in REGISTRY.names() and locate(REGISTRY.find(model), Settings()) is not None:
        pytest.skip(f"{model} weights are on this machine")
    result = runner.invoke(app, ["serve", "--model", "all-MiniLM-L6-v2", "--model", model])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.stderr


def test_serve_exits_non_zero_when_loading_fails(runner, tmp_path):
    """A model that resolves but cannot load: the server stops with the reason, not /ready 503 forever."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        os.kill(os.getpid(), signal.SIGINT)

    watchdog = threading.Timer(60, interrupt)
    watchdog.start()
    try:
        result = runner.invoke(app, ["serve", "--model", str(broken), "--port", str(free_port())])
    finally:
        watchdog.cancel()
    assert not timed_out.is_set(), "the server kept running after its model failed to load"
    assert result.exit_code == 2, result.output
    assert "model loading failed" in result.stderr and "no tokenizer.json" in result.stderr


def test_embed_too_long_names_the_cli_option(runner):
    long_text = "word " * 300
    refused = runner.invoke(app, ["embed", long_text, "--model", "all-MiniLM-L6-v2", "--json"])
    assert refused.exit_code == 2
    assert "--truncate" in refused.stderr and '"truncate"' not in refused.stderr
    assert "302 tokens" in refused.stderr and "limit of 256" in refused.stderr
    cut = runner.invoke(app, ["embed", long_text, "--model", "all-MiniLM-L6-v2", "--truncate", "--json"])
    assert cut.exit_code == 0, cut.output
    assert json.loads(cut.stdout)["usage"]["prompt_tokens"] == 256
    tokens = runner.invoke(app, ["tokenize", long_text, "--model", "all-MiniLM-L6-v2"])
    assert tokens.exit_code == 2 and "--truncate" in tokens.stderr


def test_start_up_imports_only_what_every_command_needs():
    """`embedhub kb list`, `kb --help` or a `kb search` a running server answers import the
    command line only: the eval task definitions and the ingest pipeline load with their commands."""
    import subprocess
    import sys

    heavy = ["embedhub.commands.eval", "embedhub.kb.ingest", "numpy", "torch", "transformers", "lancedb"]
    probe = f"import sys, embedhub.cli; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_eval_group_loads_on_first_use(runner):
    """The eval group is imported when used; its commands, help and task-name errors are intact."""
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0 and "eval" in listed.output and "Matryoshka" in listed.output
    tasks = runner.invoke(app, ["eval", "nosuchtask"])
    assert tasks.exit_code == 2 and "retrieval" in tasks.output
    assert runner.invoke(app, ["eval", "retrieval", "--help"]).exit_code == 0
