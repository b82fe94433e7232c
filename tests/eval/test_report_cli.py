"""Reports (JSON, Markdown, PNG) and the `embedhub eval` commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from embedhub.commands.eval import app
from embedhub.eval.core import Curve, ModelInfo, Record, TaskResult
from embedhub.eval.report import format_value, markdown_table, write_report
from embedhub.eval.suite import load_suite, parse_suite

PNG = b"\x89PNG\r\n\x1a\n"


def _model(name: str, random: bool = False) -> ModelInfo:
    return ModelInfo(name, 64, 512, True, True, random, None)


def _results() -> list[TaskResult]:
    retrieval = TaskResult("retrieval", "m1", headline="ndcg@10", notes=["scifact: train split"])
    retrieval.records = [
        Record(
            "retrieval", "m1", "scifact", {"ndcg@10": 0.5, "map": float("nan")}, split="train", mode="dense"
        ),
        Record(
            "retrieval", "m1", "scifact", {"ndcg@10": 0.6}, split="train", mode="lexical", info={"queries": 9}
        ),
    ]
    fewshot = TaskResult("fewshot", "m1", headline="accuracy")
    fewshot.curves = [Curve("tnews", [5, 10], [0.3, 0.4], "k", "accuracy", yerr=[0.01, 0.02], xlog=True)]
    fewshot.records = [Record("fewshot", "m1", "tnews", {"accuracy": 0.3}, mode="k=5")]
    longctx = TaskResult("long-context", "m2", headline="cos_mean")
    longctx.curves = [Curve("宪法", [0, 1, 2], [0.9, 0.5, 0.4], "segment", "cosine", panel="long-docs-zh")]
    return [retrieval, fewshot, longctx]


def test_write_report_files(tmp_path):
    files = write_report(_results(), [_model("m1"), _model("m2", random=True)], tmp_path, {"data": "x"})
    payload = json.loads(files.json.read_text())
    assert [r["task"] for r in payload["results"]] == ["retrieval", "fewshot", "long-context"]
    first = payload["results"][0]["records"][0]
    assert first["metrics"] == {"ndcg@10": 0.5, "map": None} and first["mode"] == "dense"
    assert payload["models"][1]["random_weights"] is True
    for task in ("retrieval", "fewshot", "long-context"):
        assert files.plots[task].read_bytes().startswith(PNG)
    markdown = files.markdown.read_text()
    assert "![fewshot](plots/fewshot.png)" in markdown
    assert "| model | dataset | split | mode | ndcg@10 | map | queries |" in markdown
    assert "| m1 | scifact | train | dense | 0.5000 | – | – |" in markdown
    assert "**random (numbers are meaningless)**" in markdown
    assert "- m1: scifact: train split" in markdown
    assert "宪法" in markdown  # the table keeps the real name even where the plot needs a stand-in
    assert markdown.index("## retrieval") < markdown.index("## fewshot") < markdown.index("## long-context")


def test_report_without_plots(tmp_path):
    files = write_report(_results()[:1], [_model("m1")], tmp_path, plots=False)
    assert files.plots == {} and not (tmp_path / "plots").exists()
    assert "| dataset | split | mode |" in files.markdown.read_text()  # one model: no model column


def test_format_value_and_table():
    assert [format_value(v) for v in (0.12345, 12.345, 1234.5, 3.0, None, float("nan"), True)] == [
        "0.1235",
        "12.35",
        "1234.5",
        "3",
        "–",
        "–",
        "yes",
    ]
    table = markdown_table([Record("t", "m", "a|b", {"x": 1.5})], several_models=False)
    assert "a\\|b" in table


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_cli_task_run(runner, tiny_model_dir, data_root, tmp_path):
    out = tmp_path / "out"
    args = ["sts", "--model", str(tiny_model_dir), "--data", str(data_root), "--out", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "spearman" in result.stdout and "report:" in result.stdout
    payload = json.loads((out / "results.json").read_text())
    assert payload["results"][0]["records"][0]["dataset"] == "stsb-en-dev"
    assert (out / "plots" / "sts.png").exists()


def test_cli_retrieval_options_and_dimensions(runner, tiny_model_dir, data_root, tmp_path):
    out = tmp_path / "out"
    args = ["retrieval", "-m", str(tiny_model_dir), "--data", str(data_root), "--out", str(out)]
    args += ["--modes", "dense,lexical", "--dimensions", "32", "--split", "train", "--no-plots", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = json.loads((out / "results.json").read_text())["results"][0]["records"]
    assert [r["mode"] for r in records] == ["dense", "lexical"]
    assert records[0]["info"]["dimensions"] == 32 and records[0]["split"] == "train"


def test_cli_errors(runner, tiny_model_dir, tmp_path):
    wrong = runner.invoke(app, ["retreival"])
    assert wrong.exit_code != 0
    assert "Tasks:" in wrong.output and "long-context" in wrong.output
    missing = runner.invoke(
        app, ["bitext", "-m", str(tiny_model_dir), "--data", str(tmp_path / "nowhere"), "-q"]
    )
    assert missing.exit_code == 2
    assert "no data for task 'bitext'" in missing.output and str(tmp_path / "nowhere") in missing.output
    bad_mode = runner.invoke(app, ["retrieval", "--modes", "semantic", "-q"])
    assert bad_mode.exit_code == 2 and "choose from: dense, lexical, hybrid" in bad_mode.output
    listing = runner.invoke(app, ["list"])
    assert listing.exit_code == 0 and "throughput" in listing.stdout


def test_cli_suite(runner, tiny_model_dir, data_root, tmp_path):
    config = tmp_path / "suite.yaml"
    config.write_text(
        f"""
models: [{tiny_model_dir}]
data: {data_root}
out: {tmp_path / "suite-out"}
tasks:
  - bitext
  - name: retrieval
    modes: [lexical]
    datasets: [scifact]
  - mrl: {{metric: sts}}
  - name: code
    data: {tmp_path / "no-code-here"}
"""
    )
    result = runner.invoke(app, ["suite", str(config), "-q"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "suite-out" / "results.json").read_text())
    assert [r["task"] for r in payload["results"]] == ["bitext", "retrieval", "mrl", "code"]
    skipped = payload["results"][3]
    assert skipped["records"] == [] and "no-code-here" in skipped["notes"][0]
    markdown = (tmp_path / "suite-out" / "report.md").read_text()
    assert "## mrl" in markdown and "plots/mrl.png" in markdown


def test_suite_config_validation(tmp_path):
    plan = parse_suite({"tasks": ["sts", {"fewshot": {"k": [5], "datasets": "tnews,agnews"}}]})
    assert plan.models == [None] and plan.tasks[1].datasets == ("tnews", "agnews")
    assert plan.tasks[1].options == {"k": [5]}
    with pytest.raises(Exception, match="valid: c, k, seeds, test_size"):
        parse_suite({"tasks": [{"name": "fewshot", "shots": 5}]})
    with pytest.raises(Exception, match="unknown suite key"):
        parse_suite({"tasks": ["sts"], "modles": ["x"]})
    with pytest.raises(Exception, match="unknown evaluation task"):
        parse_suite({"tasks": ["stss"]})
    with pytest.raises(Exception, match="lists no tasks"):
        parse_suite({"models": ["x"]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [sts\n")
    with pytest.raises(Exception, match="not valid YAML"):
        load_suite(bad)
