"""`embedhub kb failures NAME`: the files a collection keeps as failed or skipped, listed and
dismissed from the command line in this process (through a running server:
tests/accounts/test_cli_through_server.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from embedhub.cli import app


def test_kb_failures_lists_and_dismisses_in_process(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Good\n\nA fine note about helium.\n")
    (corpus / "empty.txt").write_text("")
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "bad.pdf").write_text("not a pdf")
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0

    added = runner.invoke(app, ["kb", "add", "notes", str(corpus)])
    assert added.exit_code == 1, added.output
    assert added.stderr.splitlines()[-1].startswith("`embedhub kb failures notes` lists")

    listed = runner.invoke(app, ["kb", "failures", "notes", "--json"])
    assert listed.exit_code == 0, listed.output
    failures = {row["path"]: row for row in json.loads(listed.stdout)["failures"]}
    expected = {str((corpus / name).resolve()) for name in ("empty.txt", "junk.txt", "bad.pdf")}
    assert set(failures) == expected
    assert {row["status"] for row in failures.values()} == {"failed"}
    assert "empty" in failures[str((corpus / "empty.txt").resolve())]["reason"]
    assert all(row["at"] > 0 and row["id"] for row in failures.values())

    human = runner.invoke(app, ["kb", "failures", "notes"])
    assert human.exit_code == 0, human.output
    lines = human.stdout.splitlines()
    assert lines[0].split() == ["PATH", "STATUS", "WHEN", "REASON"]
    junk = next(line for line in lines if "junk.txt" in line)
    assert "failed (ingest)" in junk and "binary" in junk
    assert lines[-1] == "3 failure(s); dismiss with --dismiss PATH or --dismiss-all"

    # a relative path names the file here; an unknown one dismisses nothing
    monkeypatch.chdir(corpus)
    unknown = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", "empty.txt", "--dismiss", "nope"])
    assert unknown.exit_code == 2 and "keeps no failure for 'nope'" in unknown.stderr
    assert len(json.loads(runner.invoke(app, ["kb", "failures", "notes", "--json"]).stdout)["failures"]) == 3
    one = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", "empty.txt", "--json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout) == {"dismissed": 1, "paths": [str((corpus / "empty.txt").resolve())]}
    left = {
        row["path"]
        for row in json.loads(runner.invoke(app, ["kb", "failures", "notes", "--json"]).stdout)["failures"]
    }
    assert left == expected - {str((corpus / "empty.txt").resolve())}

    both = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", "junk.txt", "--dismiss-all"])
    assert both.exit_code == 2 and "not both" in both.stderr
    everything = runner.invoke(app, ["kb", "failures", "notes", "--dismiss-all"])
    assert everything.exit_code == 0 and everything.stdout.strip() == "dismissed 2 failure(s) of notes"
    empty = runner.invoke(app, ["kb", "failures", "notes"])
    assert empty.exit_code == 0 and empty.stdout.strip() == "no kept failures in notes"
    missing = runner.invoke(app, ["kb", "failures", "nothing"])
    assert missing.exit_code == 2 and "nothing" in missing.stderr
