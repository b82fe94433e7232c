"""Requests a user gets wrong or makes huge: bounded cost, and 400 / 405 / 413 bodies that say what
happened and what to do (issue 27)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from embedhub.server.app import create_app
from tests.live_server import live_server

LIMIT = 512


class CharacterSpy:
    """Counts the characters an encoder hands its tokenizer."""

    def __init__(self, encoder) -> None:
        self.inner = encoder.content_ids
        self.characters = 0

    def __call__(self, texts):
        self.characters += sum(len(text) for text in texts)
        return self.inner(texts)


@pytest.fixture(scope="module")
def server(settings, tiny_encoder):
    app = create_app(
        settings.model_copy(update={"max_input_tokens": LIMIT, "max_input_chars": 20_000}),
        encoders={"tiny": tiny_encoder},
    )
    with live_server(app, "/ready") as url:
        yield url


@pytest.fixture
def spy(tiny_encoder, monkeypatch):
    counter = CharacterSpy(tiny_encoder)
    monkeypatch.setattr(tiny_encoder, "content_ids", counter)
    return counter


def test_a_30_mb_input_is_cut_after_tokenising_a_bounded_prefix(server, tiny_encoder, spy):
    """The report: {"input": "x" * 30_000_000} took 143 s, all of it tokenised before the cut."""
    text = "x" * 30_000_000
    response = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": text}, timeout=120)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["usage"] == {"prompt_tokens": LIMIT, "total_tokens": LIMIT, "truncated_inputs": 1}
    assert response.headers["x-embedhub-truncated-inputs"] == "1"
    handed = spy.characters
    assert 0 < handed < 100_000, handed  # a prefix, not 30 million characters
    # the same vector as the whole text's tokenisation cut to the limit (a prefix 20 times the one
    # handed over stands in for the whole: beyond the cut, later characters cannot change the ids)
    whole = tiny_encoder.content_ids([text[: 20 * handed]])[0]
    expected = tiny_encoder.embed_framed([tiny_encoder.frame(whole, truncate=True, limit=LIMIT)]).vectors[0]
    np.testing.assert_allclose(response.json()["data"][0]["embedding"], expected, atol=1e-6)
    tokens = httpx.post(server + "/tokenize", json={"model": "tiny", "input": text}, timeout=120).json()
    assert len(tokens["data"][0]["ids"]) == LIMIT and tokens["data"][0]["ids"][-1] == 151643


def test_a_run_only_a_full_read_cuts_is_read_up_to_the_character_limit(
    server, tiny_encoder, spy, monkeypatch
):
    """e5's Unigram (and a WordPiece [UNK] word) must read a run without whitespace to its end to cut
    it exactly: 30 MB took about a minute. Such a run is read up to max_input_chars, and refused with
    a 413 that says why beyond it, before any of it is tokenised."""
    monkeypatch.setattr(tiny_encoder, "cuts_inside_words", False)  # as a Unigram tokenizer
    monkeypatch.setattr(tiny_encoder, "max_tokenised_chars", 20_000)  # what the loader sets
    response = httpx.post(
        server + "/v1/embeddings", json={"model": "tiny", "input": ["ok", "x" * 30_000_000]}, timeout=120
    )
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("input_too_large", "input")
    assert "input 1" in error["message"] and "30,000,000 characters" in error["message"]
    assert "20,000" in error["message"] and "EMBEDHUB_MAX_INPUT_CHARS" in error["message"]
    assert spy.characters < 100  # "ok" only: the run was refused, not read
    # a run that ends (with whitespace) within the limit is read and cut exactly, as before
    text = "x" * 15_000 + " and then words"
    response = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": text}, timeout=120)
    assert response.status_code == 200 and response.json()["usage"]["truncated_inputs"] == 1
    whole = tiny_encoder.content_ids([text])[0]
    expected = tiny_encoder.embed_framed([tiny_encoder.frame(whole, truncate=True, limit=LIMIT)]).vectors[0]
    np.testing.assert_allclose(response.json()["data"][0]["embedding"], expected, atol=1e-6)


def test_untruncated_input_over_the_character_limit_is_413_before_tokenising(server, spy):
    text = "word " * 5_000  # 25,000 characters, over max_input_chars=20,000
    for route in ("/v1/embeddings", "/tokenize"):
        response = httpx.post(
            server + route, json={"model": "tiny", "input": ["ok", text], "truncate": False}
        )
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "input_too_large" and error["param"] == "input"
        message = error["message"]
        assert "input 1 has 25,000 characters" in message and "limit of 20,000" in message
        assert '"truncate": true' in message and "split" in message and "EMBEDHUB_MAX_INPUT_CHARS" in message
    assert spy.characters == 0
    truncated = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": text})
    assert truncated.status_code == 200 and truncated.json()["usage"]["truncated_inputs"] == 1


def test_raw_body_over_the_limit_is_413_while_it_streams(settings, tiny_encoder):
    """No Content-Length (chunked): the limit is checked as the body arrives, before any parsing."""
    app = create_app(
        settings.model_copy(update={"max_body_bytes": 64 * 1024}), encoders={"tiny": tiny_encoder}
    )

    def chunks():
        yield b'{"model": "tiny", "input": "'
        for _ in range(1_000):
            yield b"x" * 1024
        yield b'"}'

    with live_server(app, "/ready") as url:
        response = httpx.post(
            url + "/v1/embeddings", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert "limit of 65536 bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"model":', "expecting value at line 1 column 10"),
        ('{"model": "tiny", "input": ["a",]}', "expecting value at line 1 column 33"),
        ('{\n  "model": "tiny"\n  "input": "a"\n}', "expecting ',' delimiter at line 3 column 3"),
        ("{'model': 'tiny'}", "line 1 column 2"),
    ],
)
def test_malformed_json_is_400_with_where(server, body, where):
    response = httpx.post(
        server + "/v1/embeddings", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"
    assert error["message"].startswith("the request body is not valid JSON: ")
    assert where in error["message"], error["message"]


def test_schema_errors_stay_422(server):
    response = httpx.post(server + "/v1/embeddings", json={"model": "tiny"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_schema"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/embeddings", "POST"),
        ("PUT", "/v1/embeddings", "POST"),
        ("DELETE", "/v1/models", "GET"),
        ("POST", "/v1/models/tiny", "GET"),
        ("GET", "/tokenize", "POST"),
        ("GET", "/v1/rerank", "POST"),
        ("POST", "/health", "GET"),
        ("PUT", "/v1/collections/some-name", "GET, DELETE"),
        ("POST", "/index.html", "GET, HEAD"),
        ("DELETE", "/", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_allow(server, method, path, allow):
    response = httpx.request(method, server + path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    error = response.json()["error"]
    assert error["message"] == f"{method} is not allowed on {path}; it answers {allow}"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/nope"), ("POST", "/v1/nope")])
def test_unknown_paths_stay_404(server, method, path):
    response = httpx.request(method, server + path)
    assert response.status_code == 404 and "allow" not in response.headers
    assert response.json()["error"]["type"] == "not_found_error"


def test_the_ui_and_the_api_still_answer(server):
    assert httpx.get(server + "/").status_code == 200
    assert httpx.get(server + "/v1/models").json()["data"][0]["id"] == "random-qwen3-tiny"
