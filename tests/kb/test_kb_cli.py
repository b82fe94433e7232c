"""`embedhub kb ...` end to end, including the --json search contract."""

from __future__ import annotations

import json
import re
import shlex

from typer.testing import CliRunner

from embedhub.cli import app

SEARCH_KEYS = {"text", "score", "retrievers", "path", "page_start", "page_end", "heading_path",
               "char_start", "char_end", "snippet", "rerank_score"}  # fmt: skip


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
    assert added.exit_code == 1, added.output  # bad.pdf failed
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
    one_each = runner.invoke(
        app, ["kb", "search", "physics", "particle decay", "--per-document", "1", "--json"]
    )
    paths = [r["path"] for r in json.loads(one_each.stdout)["results"]]
    assert len(paths) == len(set(paths)) == 2
    wrong = runner.invoke(app, ["kb", "create", "other", "--lexical-language", "elvish"])
    assert wrong.exit_code == 2 and "unknown lexical language 'elvish'" in wrong.output

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


def test_kb_add_names_every_problem_file_and_exits_1(tmp_path, tiny_model_dir, monkeypatch):
    """issue 27: `unsupported 1` without the file's name, and exit code 0 although two files failed."""
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Good\n\nA fine note about helium.\n")
    (corpus / "empty.txt").write_text("")
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "data.xyz").write_text("no loader reads this")
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    human = runner.invoke(app, ["kb", "add", "notes", str(corpus)])
    assert human.exit_code == 1, human.output
    for name, status, reason in (
        ("empty.txt", "failed", "empty"),
        ("junk.txt", "failed", "binary"),
        ("data.xyz", "unsupported", "unsupported file type .xyz"),
    ):
        line = next((line for line in human.stdout.splitlines() if name in line), "")
        assert line.strip().startswith(f"{status}: ") and reason in line, human.stdout
    assert "3 file(s) not ingested (exit code 1)" in human.stderr
    as_json = runner.invoke(app, ["kb", "add", "notes", str(corpus), "--json"])
    assert as_json.exit_code == 1, as_json.output
    result = json.loads(as_json.stdout)
    files = {item["path"].rsplit("/", 1)[-1]: item for item in result["files"]}
    assert {name: item["status"] for name, item in files.items()} == {
        "good.md": "skipped",  # unchanged since the first run
        "empty.txt": "failed",
        "junk.txt": "failed",
        "data.xyz": "unsupported",
    }
    assert files["good.md"]["error"] is None and "empty" in files["empty.txt"]["error"]
    assert result["exit_code"] == 1
    (corpus / "empty.txt").unlink()
    (corpus / "junk.txt").unlink()
    (corpus / "data.xyz").unlink()
    clean = runner.invoke(app, ["kb", "add", "notes", str(corpus)])
    assert clean.exit_code == 0 and "not ingested" not in clean.output, clean.output
    usage = runner.invoke(app, ["kb", "add", "notes", str(tmp_path / "missing")])
    assert usage.exit_code == 2 and "does not exist" in usage.stderr


def test_kb_add_and_search_in_human_output(tmp_path, tiny_model_dir, monkeypatch):
    """The README's commands as people type them: no --json (the progress bar crashed here)."""
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\nA & B <i>[x]</i>.\n")
    (corpus / "bad.pdf").write_text("not a pdf")
    assert runner.invoke(app, ["kb", "create", "human", "--model", str(tiny_model_dir)]).exit_code == 0
    added = runner.invoke(app, ["kb", "add", "human", str(corpus)])
    assert added.exit_code == 1, added.output  # bad.pdf failed
    assert "added 1" in added.stdout and "failed 1" in added.stdout
    assert "failed: " in added.stdout and "bad.pdf" in added.stdout
    found = runner.invoke(app, ["kb", "search", "human", "helium nucleus", "--local"])
    assert found.exit_code == 0, found.output
    assert "1. " in found.stdout and "a.md" in found.stdout
    # the snippet as a person reads it: entities unescaped, brackets not taken for markup
    assert "The alpha particle is a helium nucleus. A & B <i>[x]</i>." in found.stdout
    found = runner.invoke(app, ["kb", "search", "human", "helium nucleus"])  # no server: loads here
    assert found.exit_code == 0 and "a.md" in found.stdout
    assert "for this search; with `embedhub serve` running for this home, the next one skips that" in (
        found.stderr
    ), found.stderr


def test_kb_search_prints_a_table_hit_a_row_per_line(tmp_path, tiny_model_dir, monkeypatch):
    """A table's snippet is pipe rows: joined into one wrapped line, a row ran into its header."""
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "coffee.md").write_text(
        "# Coffee machine\n\n| Task | How often |\n|---|---|\n| Descale the espresso machine | monthly |\n"
        "| Clean the grinder | weekly |\n"
    )
    assert runner.invoke(app, ["kb", "create", "tables", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "tables", str(corpus)]).exit_code == 0
    found = runner.invoke(app, ["kb", "search", "tables", "descale espresso machine", "--local"])
    assert found.exit_code == 0, found.output
    lines = [line.strip() for line in found.stdout.splitlines()]
    assert "| Task | How often |" in lines
    assert "| Descale the espresso machine | monthly |" in lines


def test_kb_search_uses_the_running_server(tmp_path, tiny_model_dir, monkeypatch):
    """With `embedhub serve` running for the same home, the CLI asks it instead of loading the model."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.live_server import free_port

    home = tmp_path / "home"
    monkeypatch.setenv("EMBEDHUB_HOME", str(home))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    assert runner.invoke(app, ["kb", "create", "served", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "served", str(corpus), "--json"]).exit_code == 0
    here = runner.invoke(app, ["kb", "search", "served", "helium", "--json"])
    assert here.exit_code == 0 and "loaded" not in here.stderr

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "embedhub.cli", "serve", "--model", str(tiny_model_dir), "--port", str(port)],
        env={**os.environ, "EMBEDHUB_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert (home / "server.json").exists()
        served = runner.invoke(app, ["kb", "search", "served", "helium nucleus"])
        assert served.exit_code == 0, served.output
        assert "a.md" in served.stdout and "loaded" not in served.stderr
        as_json = json.loads(runner.invoke(app, ["kb", "search", "served", "helium", "--json"]).stdout)
        assert as_json["results"] == json.loads(here.stdout)["results"]
        metrics = httpx.get(url + "/metrics").text
        searched = [
            line for line in metrics.splitlines()
            if line.startswith("embedhub_requests_total") and "/search" in line and 'status="200"' in line
        ]  # fmt: skip
        assert searched and float(searched[0].rsplit(" ", 1)[1]) == 2.0
        local = runner.invoke(app, ["kb", "search", "served", "helium", "--local"])
        assert local.exit_code == 0 and "loaded" in local.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (home / "server.json").exists()
    after = runner.invoke(app, ["kb", "search", "served", "helium"])
    assert after.exit_code == 0 and "loaded" in after.stderr


def test_kb_search_reranks_with_a_reranker_loaded_here(
    tmp_path, tiny_model_dir, tiny_reranker_dir, monkeypatch
):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMBEDHUB_RERANKER", raising=False)
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for index, text in enumerate(
        ["Beijing is the capital of China.", "Gravity attracts bodies.", "北京是首都。"]
    ):
        (corpus / f"{index}.txt").write_text(text)
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "notes", str(corpus)]).exit_code == 0
    search = ["kb", "search", "notes", "capital of China", "--json"]
    found = runner.invoke(app, [*search, "--reranker", str(tiny_reranker_dir), "--rerank-candidates", "2"])
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert len(results) == 2 and all(0.0 <= row["rerank_score"] <= 1.0 for row in results)
    assert all("rerank:random-qwen3-reranker-tiny" in row["retrievers"] for row in results)
    assert results[0]["rerank_score"] >= results[1]["rerank_score"]
    above = runner.invoke(app, [*search, "--reranker", str(tiny_reranker_dir), "--min-score", "1.5"])
    assert above.exit_code == 0 and json.loads(above.stdout)["results"] == []
    nothing = runner.invoke(app, [*search, "--rerank"])
    assert nothing.exit_code != 0 and "--reranker" in nothing.output


def test_kb_index_builds_the_ann_index_and_search_can_stay_exact(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for index in range(6):
        (corpus / f"n{index}.txt").write_text(f"Note {index} on particle number {index * 7}.")
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    added = runner.invoke(app, ["kb", "add", "notes", str(corpus), "--ann-min-rows", "100", "--json"])
    assert added.exit_code == 0, added.output
    info = json.loads(runner.invoke(app, ["kb", "info", "notes", "--json"]).stdout)
    assert info["vector_index"]["type"] == "exact", "6 chunks are below --ann-min-rows 100"
    human = runner.invoke(app, ["kb", "info", "notes"]).stdout
    assert "vector_index: none: exact search (an index is built at 50,000 chunks" in human, human
    assert re.search(r"^created_at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", human, re.MULTILINE), human
    # past a lowered threshold, the next ingest builds it
    (corpus / "n6.txt").write_text("Note 6 on particle number 42.")
    runner.invoke(app, ["kb", "add", "notes", str(corpus), "--ann-min-rows", "3"])
    info = json.loads(runner.invoke(app, ["kb", "info", "notes", "--json"]).stdout)
    assert info["vector_index"]["type"] == "IVF_SQ" and info["vector_index"]["rows_indexed"] == 7
    rebuilt = json.loads(runner.invoke(app, ["kb", "index", "notes", "--rebuild", "--json"]).stdout)
    assert rebuilt["changed"] is True and rebuilt["vector_index"]["rows_at_training"] == 7
    human = runner.invoke(app, ["kb", "index", "notes"]).stdout
    assert human.startswith("notes: vector index already current in ") and "{" not in human, human
    assert "IVF_SQ, 7 chunks indexed; partitions 1; search: partitions probed 1, refine factor 3" in human
    exact = runner.invoke(
        app, ["kb", "search", "notes", "particle", "--mode", "dense", "--exact", "--local", "--json"]
    )
    assert exact.exit_code == 0, exact.output
    assert len(json.loads(exact.stdout)["results"]) == 7


def test_kb_search_with_accounts_on_uses_the_users_key_and_says_what_it_did(
    tmp_path, tiny_model_dir, tiny_encoder, settings, monkeypatch
):
    """With accounts on, the server refuses a command without a key: the search runs here and says
    that server refused it (not that a server would skip the load); with a user's key (--api-key or
    EMBEDHUB_API_KEY) it goes through the server, which applies that user's access."""
    from embedhub.accounts.store import AccountStore
    from embedhub.kb.collection import KnowledgeBase
    from embedhub.server.app import create_app
    from tests.live_server import free_port, live_server

    home = tmp_path / "home"
    monkeypatch.setenv("EMBEDHUB_HOME", str(home))
    monkeypatch.delenv("EMBEDHUB_API_KEY", raising=False)
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "notes", str(corpus), "--json"]).exit_code == 0
    here = json.loads(runner.invoke(app, ["kb", "search", "notes", "helium", "--json"]).stdout)
    store = AccountStore.for_home(home)
    store.add_user("alice", "editor", "correct horse battery")
    store.add_user("bob", "viewer", "correct horse battery")
    keys = {name: store.create_key(name, "cli")["key"] for name in ("alice", "bob")}
    configured = settings.model_copy(update={"home": home, "accounts": "on", "port": free_port()})
    store.set_owner("notes", KnowledgeBase(configured).get("notes").config.created_at, "alice")
    served = create_app(configured, encoders={str(tiny_model_dir): tiny_encoder})
    with live_server(served, ready_path="/ready", port=configured.port) as url:
        refused = runner.invoke(app, ["kb", "search", "notes", "helium nucleus"])
        assert refused.exit_code == 0 and "a.md" in refused.stdout
        assert f"the embedhub serve for this home ({url}) refused this command's key" in refused.stderr
        assert "--api-key" in refused.stderr and "the next one skips that" not in refused.stderr
        through = runner.invoke(
            app, ["kb", "search", "notes", "helium", "--json", "--api-key", keys["alice"]]
        )
        assert through.exit_code == 0 and "loaded" not in through.stderr
        assert json.loads(through.stdout)["results"] == here["results"]
        monkeypatch.setenv("EMBEDHUB_API_KEY", keys["alice"])
        said = runner.invoke(app, ["kb", "search", "notes", "helium"])
        assert said.exit_code == 0 and "a.md" in said.stdout
        assert f"this search went through embedhub serve at {url} with your API key" in said.stderr
        hidden = runner.invoke(app, ["kb", "search", "notes", "helium", "--api-key", keys["bob"]])
        assert hidden.exit_code == 2 and "no collection named 'notes'" in hidden.stderr
    store.close()


def test_kb_info_names_the_command_that_rechunks_older_documents(tmp_path, tiny_model_dir, monkeypatch):
    import sqlite3

    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\n## B\n\nA note with enough words to be one chunk of body.\n")
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "notes", str(corpus)]).exit_code == 0
    assert "rechunk: -" in runner.invoke(app, ["kb", "info", "notes"]).stdout
    manifest = tmp_path / "home" / "collections" / "notes" / "manifest.sqlite"
    with sqlite3.connect(manifest) as db:  # as chunked before the chunker recorded its version
        db.execute("UPDATE documents SET chunker_version = NULL")
    human = runner.invoke(app, ["kb", "info", "notes"]).stdout
    command = re.search(r"re-chunk them with: embedhub (kb add notes .+)$", human, re.MULTILINE)
    assert command and "outdated_chunking: 1" in human, human
    added = runner.invoke(app, [*shlex.split(command.group(1)), "--json"])
    assert json.loads(added.stdout)["updated"] == 1, added.output
    info = json.loads(runner.invoke(app, ["kb", "info", "notes", "--json"]).stdout)
    assert (info["outdated_chunking"], info["rechunk"]) == (0, None)


def test_kb_add_bar_moves_inside_a_file(tmp_path):
    """One large file: the bar, the chunk count and chunks/s move with every embedding call inside
    it, not only when the file is finished (issue 27: the bar hardly moved)."""
    from pathlib import Path

    from embedhub.commands.ingest_progress import IngestProgressBar
    from embedhub.kb.ingest import FileOutcome, FileStatus

    bar = IngestProgressBar()
    bar.bar.disable = True  # no terminal output in the test; the task's numbers still move
    bar.start(1)
    seen = []
    for chunks, fraction in ((32, 0.002), (64, 0.004), (96, 0.006)):
        bar.embedded(Path("statutes.txt"), chunks, fraction)
        task = bar.bar.tasks[0]
        seen.append((task.completed, task.fields["chunks"], task.fields["rate"]))
    assert [completed for completed, _, _ in seen] == [0.002, 0.004, 0.006]
    assert [chunks for _, chunks, _ in seen] == [32, 64, 96]
    assert all(rate.endswith("chunks/s") for _, _, rate in seen)
    assert "0.6%" in bar.bar.tasks[0].fields["last"]
    bar.file_done(FileOutcome("statutes.txt", FileStatus.ADDED, chunks=16000, tokens=10))
    assert bar.bar.tasks[0].completed == 1 and bar.bar.tasks[0].fields["files_done"] == 1
    bar.stop()
