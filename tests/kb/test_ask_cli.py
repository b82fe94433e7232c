"""`embedhub kb ask` with the stand-in chat endpoint: the streamed answer and its numbered sources,
--json, follow-ups through --conversation, no chat endpoint, and chat failures (exit code 2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from embedhub.cli import app
from tests.chat_standin import ERROR_MESSAGE, chat_standin


@pytest.fixture
def notes(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    for variable in ("EMBEDHUB_CHAT_URL", "EMBEDHUB_CHAT_MODEL", "EMBEDHUB_CHAT_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "cache.md").write_text("# Cache\n\n## Keys\n\nThe cache is keyed by model and token ids.\n")
    (corpus / "disk.md").write_text("# Disk\n\nCached vectors can also live on disk.\n")
    runner = CliRunner()
    assert runner.invoke(app, ["kb", "create", "notes", "--model", str(tiny_model_dir)]).exit_code == 0
    assert runner.invoke(app, ["kb", "add", "notes", str(corpus), "--json"]).exit_code == 0
    return runner


def test_ask_streams_the_answer_then_its_sources(notes, monkeypatch, tmp_path):
    with chat_standin("By model and token ids [2].") as standin:
        monkeypatch.setenv("EMBEDHUB_CHAT_URL", standin.url)
        monkeypatch.setenv("EMBEDHUB_CHAT_MODEL", "qwen3:4b")
        found = notes.invoke(app, ["kb", "ask", "notes", "How is the cache keyed?", "--local", "--json"])
        assert found.exit_code == 0, found.output
        body = json.loads(found.stdout)
        assert body["answer"] == "By model and token ids [2]." and body["status"] == "answered"
        assert body["citations"][0]["number"] == 2
        assert body["citations"][0]["chunk_id"] == body["evidence"][1]["chunk_id"]
        second = body["evidence"][1]
        assert f"[2] {second['path'].rsplit('/', 1)[-1]}" in standin.last_prompt

        human = notes.invoke(app, ["kb", "ask", "notes", "How is the cache keyed?", "--mode", "lexical"])
        assert human.exit_code == 0, human.output
        answer, sources = human.stdout.split("Sources:")
        assert answer.strip() == "By model and token ids [2]."
        assert sources.strip().startswith("[2] ") and sources.count("[") == 1

        conversation = tmp_path / "talk.json"
        for question in ("How is the cache keyed?", "And on disk?"):
            asked = notes.invoke(app, ["kb", "ask", "notes", question, "--conversation", str(conversation)])
            assert asked.exit_code == 0, asked.output
        messages = standin.requests[-1]["messages"]
        assert [m["content"] for m in messages[1:3]] == ["How is the cache keyed?", "By model and token ids."]
        assert len(json.loads(conversation.read_text())) == 4

        standin.mode = "error"
        failed = notes.invoke(app, ["kb", "ask", "notes", "How is the cache keyed?", "--json"])
        assert failed.exit_code == 2 and f"answered 500: {ERROR_MESSAGE}" in failed.stderr
        failed = notes.invoke(app, ["kb", "ask", "notes", "How is the cache keyed?"])
        assert failed.exit_code == 2 and "Evidence (no answer):" in failed.stdout
        assert "embedhub: error: the chat endpoint" in failed.stderr


def test_ask_without_a_chat_endpoint_shows_the_evidence(notes):
    shown = notes.invoke(app, ["kb", "ask", "notes", "How is the cache keyed?"])
    assert shown.exit_code == 0, shown.output
    assert "EMBEDHUB_CHAT_URL" in shown.stdout and "[1] " in shown.stdout and "cache.md" in shown.stdout
    body = json.loads(notes.invoke(app, ["kb", "ask", "notes", "cache keys", "--json"]).stdout)
    assert body["status"] == "no_chat" and body["evidence"] and body["answer"] == ""
    missing = notes.invoke(app, ["kb", "ask", "nope", "why?"])
    assert missing.exit_code == 2 and "no collection named 'nope'" in missing.stderr
