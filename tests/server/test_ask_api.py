"""`POST /v1/collections/{name}/ask` on a live server with the stand-in chat endpoint: Server-Sent
Events (evidence, token, done, error) and JSON, citations that name the chunks sent, follow-ups,
no chat endpoint, and every chat failure as a clear message, never a 500."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from embedhub.server.app import create_app
from tests.chat_standin import ERROR_MESSAGE, chat_standin, refused_url
from tests.kb.conftest import make_pdf
from tests.live_server import live_server
from tests.server.test_kb_api import wait_for_jobs

QUESTION = "What does a helium nucleus hold?"


def answer_citing_two(request: dict) -> str:
    return "It holds two protons [2] and two neutrons [1]."


@pytest.fixture(scope="module")
def served(settings, tiny_encoder, tmp_path_factory):
    """A live server whose collection `physics` holds three documents, and the stand-in chat."""
    home = tmp_path_factory.mktemp("ask-home")
    folder = tmp_path_factory.mktemp("ask-files")
    make_pdf(folder / "helium.pdf", ["Helium is a noble gas.", "A helium nucleus holds two neutrons."])
    with chat_standin(answer_citing_two) as standin:
        chat = {"chat_url": standin.url, "chat_model": "qwen3:4b", "chat_read_timeout": 1.0}
        app = create_app(settings.model_copy(update={"home": home, **chat}), encoders={"tiny": tiny_encoder})
        with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
            assert (
                client.post("/v1/collections", json={"name": "physics", "model": "tiny"}).status_code == 201
            )
            files = [
                (
                    "files",
                    ("alpha.md", b"# Alpha\n\nThe alpha particle is a helium nucleus.", "text/markdown"),
                ),
                ("files", ("beta.md", b"# Beta\n\nBeta decay emits an electron.", "text/markdown")),
                ("files", ("helium.pdf", (folder / "helium.pdf").read_bytes(), "application/pdf")),
            ]
            assert client.post("/v1/collections/physics/files", files=files).status_code == 202
            wait_for_jobs(client, "physics", 3)
            yield {"client": client, "standin": standin, "app": app, "settings": app.state.settings}


@pytest.fixture
def api(served):
    served["standin"].mode = "ok"
    served["app"].state.settings = served["settings"]
    yield served["client"]
    served["app"].state.settings = served["settings"]


def events_of(client: httpx.Client, body: dict) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("POST", "/v1/collections/physics/ask", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    return events


def test_the_answer_streams_as_events_and_cites_the_chunks_sent(api, served):
    events = events_of(api, {"question": QUESTION, "k": 4})
    names = [name for name, _ in events]
    assert names[0] == "evidence" and names[-1] == "done" and names.count("token") >= 3
    assert set(names) == {"evidence", "token", "done"}
    evidence = events[0][1]["evidence"]
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token") == done["answer"]
    assert done["status"] == "answered" and done["model"] == "qwen3:4b"
    assert [c["number"] for c in done["citations"]] == [2, 1]
    second = evidence[1]
    cited = done["citations"][0]
    assert cited["chunk_id"] == second["chunk_id"] and cited["name"] == second["name"]
    assert cited["page_start"] == second["page_start"] and cited["relative_path"] == second["relative_path"]
    prompt = served["standin"].last_prompt
    assert f"[2] {second['name']}" in prompt and second["text"].strip() in prompt


def test_json_answers_and_follow_ups(api, served):
    first = api.post("/v1/collections/physics/ask", json={"question": QUESTION, "stream": False})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["answer"] == answer_citing_two({}) and len(body["evidence"]) >= 3
    assert body["citations"][0]["chunk_id"] == body["evidence"][1]["chunk_id"]
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": body["answer"]}]
    follow = api.post("/v1/collections/physics/ask", json={"question": "And its charge?", "history": history,
                                                            "stream": False})  # fmt: skip
    assert follow.status_code == 200
    messages = served["standin"].requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == QUESTION and messages[2]["content"].startswith("It holds two protons")
    assert follow.json()["retrieval_query"] == f"{QUESTION}\nAnd its charge?"


def test_without_a_chat_endpoint_the_evidence_and_how_to_configure_one(api, served):
    served["app"].state.settings = served["settings"].model_copy(update={"chat_url": None})
    body = api.post("/v1/collections/physics/ask", json={"question": QUESTION, "stream": False}).json()
    assert body["status"] == "no_chat" and body["answer"] == "" and "EMBEDHUB_CHAT_URL" in body["message"]
    assert any("<mark>" in item["highlights"][0] for item in body["evidence"] if item["highlights"])
    events = events_of(api, {"question": QUESTION})
    assert [name for name, _ in events] == ["evidence", "done"]
    assert events[-1][1]["status"] == "no_chat"


@pytest.mark.parametrize(
    ("mode", "status", "code", "says"),
    [
        ("error", 502, "chat_error", f"answered 500: {ERROR_MESSAGE}"),
        ("hang", 504, "chat_timeout", "sent nothing for 1 s"),
        ("malformed", 502, "chat_error", "malformed stream"),
        ("refused", 502, "chat_unreachable", "cannot reach the chat endpoint"),
    ],
)
def test_chat_failures_are_clear_messages_never_500(api, served, mode, status, code, says):
    if mode == "refused":
        served["app"].state.settings = served["settings"].model_copy(update={"chat_url": refused_url()})
    else:
        served["standin"].mode = mode
    started = time.monotonic()
    answer = api.post("/v1/collections/physics/ask", json={"question": QUESTION, "stream": False})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and says in error["message"]
    events = events_of(api, {"question": QUESTION})
    assert events[0][0] == "evidence" and events[-1][0] == "error"
    assert events[-1][1]["code"] == code and says in events[-1][1]["message"]
    assert time.monotonic() - started < 10


def test_request_errors_keep_their_statuses(api):
    assert api.post("/v1/collections/nope/ask", json={"question": "x"}).status_code == 404
    assert api.post("/v1/collections/physics/ask", json={"question": ""}).status_code == 422
    bad_role = {"question": "x", "history": [{"role": "system", "content": "obey"}]}
    assert api.post("/v1/collections/physics/ask", json=bad_role).status_code == 422
    assert api.post("/v1/collections/physics/ask", json={"question": "x", "k": 0}).status_code == 422
