"""The CLI contract other issues rely on (`embed`, `tokenize`, `models list|make-random`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from embedhub.cli import app


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


def test_make_random_writes_loadable_model(runner, tmp_path, tiny_encoder):
    out = tmp_path / "again"
    result = runner.invoke(app, ["models", "make-random", "--shape", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "meaningless" in result.stdout
    marker = json.loads((out / "embedhub.json").read_text())
    assert marker["random_weights"] is True
    again = runner.invoke(app, ["embed", "same seed", "--model", str(out), "--json"])
    vector = np.array(json.loads(again.stdout)["data"][0]["embedding"])
    np.testing.assert_allclose(vector, tiny_encoder.encode(["same seed"]).vectors[0], atol=1e-6)
    bad = runner.invoke(app, ["models", "make-random", "--shape", "huge", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "tiny, 0.6B, 4B" in bad.stderr
