"""`embedhub kb ...` end to end, including the --json search contract."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from embedhub.cli import app

SEARCH_KEYS = {"text", "score", "retrievers", "path", "page_start", "page_end", "heading_path",
               "char_start", "char_end", "snippet"}  # fmt: skip


def test_kb_commands(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "b.txt").write_text("Beta decay emits an electron.")
    (corpus / "bad.pdf").write_text("not a pdf")

    created = runner.invoke(
        app, ["kb", "create", "physics", "--model", str(tiny_model_dir), "--dimensions", "32"]
    )
    assert created.exit_code == 0, created.output
    added = runner.invoke(app, ["kb", "add", "physics", str(corpus), "--json"])
    assert added.exit_code == 0, added.output
    summary = json.loads(added.stdout)
    assert (summary["added"], summary["failed"]) == (2, 1)
    assert "bad.pdf" in summary["failures"][0]["path"]
    again = json.loads(runner.invoke(app, ["kb", "add", "physics", str(corpus), "--json"]).stdout)
    assert again["skipped"] == 2 and again["embedded_chunks"] == 0

    found = runner.invoke(app, ["kb", "search", "physics", "helium nucleus", "-k", "2", "--json"])
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert results and set(results[0]) == SEARCH_KEYS
    lexical = json.loads(
        runner.invoke(app, ["kb", "search", "physics", "helium", "--mode", "lexical", "--json"]).stdout
    )
    assert lexical["results"][0]["path"].endswith("a.md")
    assert lexical["results"][0]["heading_path"] == ["Alpha"]

    listed = json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout)["collections"]
    assert listed[0]["name"] == "physics" and listed[0]["dimensions"] == 32
    info = json.loads(runner.invoke(app, ["kb", "info", "physics", "--json"]).stdout)
    assert info["done"] == 2 and info["failures"][0]["error"]
    removed = runner.invoke(app, ["kb", "remove", "physics", str(corpus / "b.txt")])
    assert removed.exit_code == 0 and "removed 1" in removed.stdout
    missing = runner.invoke(app, ["kb", "search", "nope", "x"])
    assert missing.exit_code == 2 and "no collection named 'nope'" in missing.stderr
    dropped = runner.invoke(app, ["kb", "drop", "physics", "--yes"])
    assert dropped.exit_code == 0
    assert json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout)["collections"] == []
