"""The OpenAI-compatible server, driven by the official `openai` client against a live server."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from embedhub.errors import EmbedhubError
from embedhub.server.app import create_app
from embedhub.server.security import check_bind_policy
from tests.live_server import live_server

TEXTS = ["The capital of China is Beijing.", "Explain gravity", "北京是中国的首都。", "def f(x): return x"]


@pytest.fixture(scope="module")
def server(settings, tiny_encoder, minilm_encoder):
    app = create_app(
        settings.model_copy(update={"max_items_per_request": 64, "max_body_bytes": 256 * 1024}),
        encoders={"tiny": tiny_encoder, "all-MiniLM-L6-v2": minilm_encoder},
    )
    with live_server(app, "/ready") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def test_floats_match_the_encoder(client, tiny_encoder):
    response = client.embeddings.create(model="tiny", input=TEXTS)
    vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
    expected = tiny_encoder.encode(TEXTS)
    np.testing.assert_allclose(vectors, expected.vectors, atol=1e-6)
    assert response.usage.prompt_tokens == expected.prompt_tokens
    assert [item.index for item in response.data] == [0, 1, 2, 3]
    assert response.model == "random-qwen3-tiny"


def test_base64_and_dimensions(client, tiny_encoder):
    response = client.embeddings.create(model="tiny", input=TEXTS, dimensions=32, encoding_format="base64")
    expected = tiny_encoder.encode(TEXTS, dimensions=32).vectors
    # Asked for explicitly, the SDK hands back the base64 text: little-endian float32 bytes.
    vectors = np.array(
        [np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in response.data]
    )
    assert vectors.shape == (4, 32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    # By default the SDK itself asks for base64 and decodes it: the floats must survive that path.
    default = client.embeddings.create(model="tiny", input=TEXTS[:1])
    np.testing.assert_allclose(
        default.data[0].embedding, tiny_encoder.encode(TEXTS[:1]).vectors[0], atol=1e-7
    )
    raw = httpx.post(
        str(client.base_url) + "embeddings",
        json={"model": "tiny", "input": "x", "encoding_format": "base64"},
    ).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, tiny_encoder.encode(["x"]).vectors[0], atol=1e-7)


def test_query_instruction_extensions(server, tiny_encoder):
    url = server + "/v1/embeddings"
    as_query = httpx.post(
        url, json={"model": "tiny", "input": "Explain gravity", "input_type": "query"}
    ).json()
    custom = httpx.post(
        url, json={"model": "tiny", "input": "Explain gravity", "instruction": "Find physics"}
    ).json()
    np.testing.assert_allclose(
        as_query["data"][0]["embedding"],
        tiny_encoder.encode(["Explain gravity"], kind="query").vectors[0],
        atol=1e-6,
    )
    expected = tiny_encoder.encode(["Explain gravity"], kind="query", instruction="Find physics").vectors[0]
    np.testing.assert_allclose(custom["data"][0]["embedding"], expected, atol=1e-6)


def test_token_id_inputs_with_accept_token_ids(settings, tiny_encoder):
    accepting = settings.model_copy(update={"accept_token_ids": True, "max_input_tokens": 16})
    app = create_app(accepting, encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        long_ids = list(range(1000, 1030))
        cut = client.embeddings.create(model="tiny", input=[long_ids, [5, 6]])
        assert cut.usage.truncated_inputs == 1 and cut.usage.prompt_tokens == 16 + 3
        expected_cut = tiny_encoder.embed_framed([[*long_ids[:15], 151643]]).vectors[0]
        np.testing.assert_allclose(cut.data[0].embedding, expected_cut, atol=1e-6)
        strict_body = {"model": "tiny", "input": long_ids, "truncate": False}
        strict = httpx.post(url + "/v1/embeddings", json=strict_body)
        assert strict.status_code == 400 and "31 tokens" in strict.json()["error"]["message"]
        ids = tiny_encoder.content_ids(["hello world", "second"])
        single = client.embeddings.create(model="tiny", input=ids[0])
        double = client.embeddings.create(model="tiny", input=ids)
        expected = tiny_encoder.encode(["hello world", "second"]).vectors
        np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-6)
        np.testing.assert_allclose([d.embedding for d in double.data], expected, atol=1e-6)
        assert single.usage.prompt_tokens == len(ids[0]) + 1
        vocabulary = tiny_encoder.vocabulary_size
        for bad in ([[1, 2, 10**9]], [[-1]], [10**30], [[vocabulary]]):
            response = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": bad})
            assert response.status_code == 400, response.text
            assert "outside the vocabulary" in response.json()["error"]["message"]
        assert httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": [[]]}).status_code == 400


def test_token_ids_refused_by_default(server, client):
    """LangChain's default sends tiktoken (cl100k) ids; read in another vocabulary they give wrong
    vectors with status 200, so a server that cannot know the tokenizer refuses them."""
    for body in ([9707, 1879], [[9707, 1879], [17]]):
        with pytest.raises(openai.BadRequestError) as caught:
            client.embeddings.create(model="tiny", input=body)
        error = caught.value.body
        assert error["code"] == "token_ids_not_accepted" and error["param"] == "input"
        message = error["message"]
        assert "wrong vectors" in message and "check_embedding_ctx_length=False" in message
        assert "embedhub serve --accept-token-ids" in message and "EMBEDHUB_ACCEPT_TOKEN_IDS=1" in message


def test_models_route(client):
    models = {model.id: model for model in client.models.list().data}
    assert set(models) == {"random-qwen3-tiny", "all-MiniLM-L6-v2"}
    tiny = httpx.get(str(client.base_url) + "models/tiny").json()
    assert tiny["mrl_dimensions"][0] == 32 and tiny["random_weights"] is True and tiny["instruction_aware"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "tiny", "input": ""}, 400, "empty"),
        ({"model": "tiny", "input": []}, 400, "empty list"),
        ({"model": "tiny", "input": "x", "dimensions": 16}, 400, "32..64"),
        ({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 128}, 400, "native 384"),
        ({"model": "tiny", "input": "x", "input_type": "passage"}, 400, "query, document"),
        ({"model": "all-MiniLM-L6-v2", "input": "word " * 400, "truncate": False}, 400, "limit of 256"),
        ({"model": "tiny", "input": [[1, 2, 10**9]]}, 400, "token-id input is refused"),
        ({"model": "nope", "input": "x"}, 404, "random-qwen3-tiny"),
        ({"model": "tiny", "input": ["x"] * 65}, 413, "limit of 64"),
        ({"model": "tiny"}, 422, "input"),
        ({"model": "tiny", "input": "x", "encoding_format": "int8"}, 422, "encoding_format"),
        ({"model": "tiny", "input": [1.5]}, 422, "input"),
    ],
)
def test_bad_requests(server, body, status, needle):
    response = httpx.post(server + "/v1/embeddings", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"] and error["type"]


def test_over_long_input_counts_and_truncates(server, minilm_encoder):
    """The server truncates by default (frontends send character-sized chunks and cannot ask), and
    says so: usage.truncated_inputs, a header, a counter; "truncate": false is strict."""
    url = server + "/v1/embeddings"
    long_text = "word " * 400
    refused = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": long_text, "truncate": False})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "context_length_exceeded" and "402 tokens" in error["message"]
    assert '"truncate": true' in error["message"] and "embedhub serve --truncate" in error["message"]
    assert "--truncate /" not in error["message"]
    cut = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": [long_text, "short", long_text]})
    assert cut.status_code == 200
    usage = cut.json()["usage"]
    assert usage["truncated_inputs"] == 2 and usage["prompt_tokens"] == 256 * 2 + 3
    assert usage["total_tokens"] == usage["prompt_tokens"]
    assert cut.headers["x-embedhub-truncated-inputs"] == "2"
    expected = minilm_encoder.encode([long_text], truncate=True).vectors[0]
    np.testing.assert_allclose(cut.json()["data"][0]["embedding"], expected, atol=1e-6)
    explicit = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": long_text, "truncate": True})
    assert explicit.json()["usage"]["truncated_inputs"] == 1
    short = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": "short"})
    assert short.json()["usage"]["truncated_inputs"] == 0
    assert short.headers["x-embedhub-truncated-inputs"] == "0"
    metrics = httpx.get(server + "/metrics").text
    assert 'embedhub_truncated_inputs_total{model="all-MiniLM-L6-v2"} 3.0' in metrics
    # The cut keeps the final [SEP], as the model was trained with.
    ids = httpx.post(server + "/tokenize", json={"model": "all-MiniLM-L6-v2", "input": long_text}).json()
    assert len(ids["data"][0]["ids"]) == 256 and ids["data"][0]["tokens"][-1] == "[SEP]"


def test_truncation_policy_off_and_token_limit_keeps_endoftext(settings, tiny_encoder, minilm_encoder):
    strict = settings.model_copy(update={"truncate": False, "max_input_tokens": 8})
    app = create_app(strict, encoders={"tiny": tiny_encoder, "all-MiniLM-L6-v2": minilm_encoder})
    with live_server(app, "/ready") as url:
        text = "one two three four five six seven eight nine ten eleven"
        refused = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": text})
        assert refused.status_code == 400
        assert "embedhub serve --truncate" in refused.json()["error"]["message"]
        cut = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": text, "truncate": True})
        assert cut.status_code == 200 and cut.json()["usage"] == {
            "prompt_tokens": 8,
            "total_tokens": 8,
            "truncated_inputs": 1,
        }
        full = tiny_encoder.tokenize([text])[0]
        kept = [*full[:7], full[-1]]  # the first 7 tokens, then Qwen3's <|endoftext|>
        assert kept[-1] == 151643
        expected = tiny_encoder.embed_framed([kept]).vectors[0]
        np.testing.assert_allclose(cut.json()["data"][0]["embedding"], expected, atol=1e-6)
        long_text = "word " * 400
        model_limit = httpx.post(url + "/tokenize", json={"model": "all-MiniLM-L6-v2", "input": long_text})
        assert model_limit.status_code == 400 and '"truncate": true' in model_limit.json()["error"]["message"]


def test_oversized_body_413(server):
    response = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": "x" * 300_000})
    assert response.status_code == 413
    assert "limit of 262144 bytes" in response.json()["error"]["message"]


def test_openai_client_errors(client):
    with pytest.raises(openai.BadRequestError, match=r"32\.\.64"):
        client.embeddings.create(model="tiny", input="x", dimensions=8)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="missing", input="x")


def test_concurrent_requests_equal_serial_encoding(server, tiny_encoder):
    rng = np.random.default_rng(3)
    words = ["alpha", "beta", "gamma", "delta", "北京", "上海", "code", "def", "return"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(96)]
    expected = tiny_encoder.encode(texts).vectors
    with httpx.Client(timeout=60) as http, ThreadPoolExecutor(32) as pool:
        results = list(
            pool.map(
                lambda text: http.post(
                    server + "/v1/embeddings", json={"model": "tiny", "input": text}
                ).json(),
                texts,
            )
        )
    got = np.array([result["data"][0]["embedding"] for result in results], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_tokenize_route(server):
    response = httpx.post(server + "/tokenize", json={"model": "tiny", "input": "Hello world"})
    assert response.json()["data"][0]["ids"] == [9707, 1879, 151643]


def test_metrics_count_requests_batches_and_cache(server):
    bad = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": ""})
    assert bad.status_code == 400  # counted as an error by type
    httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": "cache me"})
    httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": "cache me"})
    text = httpx.get(server + "/metrics").text
    assert 'embedhub_requests_total{route="/v1/embeddings",status="200"}' in text
    assert "embedhub_batch_items_bucket" in text and "embedhub_batch_tokens_bucket" in text
    assert 'embedhub_errors_total{type="bad_request"}' in text
    hits = [
        line
        for line in text.splitlines()
        if line.startswith('embedhub_cache_hits{model="random-qwen3-tiny"}')
    ]
    assert hits and float(hits[0].split()[-1]) >= 1
    assert 'embedhub_tokens_total{model="random-qwen3-tiny"}' in text


class _GatedEncoder:
    """Wraps an encoder so forward passes wait for a gate: the queue then fills deterministically."""

    def __init__(self, inner):
        self._inner = inner
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def embed_token_ids(self, batch):
        self.gate.wait(timeout=60)
        return self._inner.embed_token_ids(batch)


def test_overload_answers_429_then_recovers(settings, tiny_encoder):
    gated = _GatedEncoder(tiny_encoder)
    app = create_app(
        settings.model_copy(update={"max_queue_items": 4, "cache_mb": 0}),
        encoders={"tiny": gated},
    )
    with live_server(app, "/ready") as url, ThreadPoolExecutor(12) as pool:
        # the gate is closed: the first request's forward pass blocks, so the queue fills up
        futures = [
            pool.submit(
                httpx.post, url + "/v1/embeddings", json={"model": "tiny", "input": f"t{i}"}, timeout=60
            )
            for i in range(12)
        ]
        import time

        time.sleep(1.0)
        gated.gate.set()
        statuses = sorted(future.result().status_code for future in futures)
        assert 429 in statuses and 200 in statuses
        assert set(statuses) <= {200, 429}
        limited = next(f.result() for f in futures if f.result().status_code == 429)
        assert limited.headers["retry-after"] == "1" and "capacity" in limited.json()["error"]["message"]
        assert httpx.get(url + "/health").status_code == 200
        after = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "after"}, timeout=60)
        assert after.status_code == 200


def test_not_ready_answers_503(settings, tiny_encoder):
    release = threading.Event()

    def slow_factory(reference):
        release.wait(timeout=60)
        return tiny_encoder

    app = create_app(settings.model_copy(update={"serve_models": ["tiny"]}), encoder_factory=slow_factory)
    with live_server(app, "/health") as url:
        assert httpx.get(url + "/ready").status_code == 503
        response = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "x"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "not_ready"
        release.set()
        for _ in range(200):
            if httpx.get(url + "/ready").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "x"}).status_code == 200


def test_api_keys_enforced(settings, tiny_encoder):
    app = create_app(settings.model_copy(update={"api_keys": ["secret-1"]}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/health") as url:
        assert httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "x"}).status_code == 401
        wrong = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(url + "/metrics").status_code == 401
        good = openai.OpenAI(base_url=url + "/v1", api_key="secret-1", max_retries=0)
        assert len(good.embeddings.create(model="tiny", input="x").data) == 1
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="bad", max_retries=0).models.list()


def test_bind_policy(settings):
    check_bind_policy(settings.model_copy(update={"host": "127.0.0.1"}))
    check_bind_policy(settings.model_copy(update={"host": "::1"}))
    # with accounts off, a public bind needs a key (or --allow-public); with accounts on (the
    # default `auto` for a public bind) users sign in, so it is guarded without one
    with pytest.raises(EmbedhubError, match="without an API key"):
        check_bind_policy(settings.model_copy(update={"host": "0.0.0.0", "accounts": "off"}))
    check_bind_policy(settings.model_copy(update={"host": "0.0.0.0", "accounts": "off", "api_keys": ["k"]}))
    check_bind_policy(
        settings.model_copy(update={"host": "0.0.0.0", "accounts": "off", "allow_public": True})
    )
    check_bind_policy(settings.model_copy(update={"host": "0.0.0.0"}))


def test_disk_cache_survives_restart(settings, tiny_encoder, tmp_path):
    configured = settings.model_copy(update={"home": tmp_path, "cache_on_disk": True})
    for expected_hits in (0, 1):
        app = create_app(configured, encoders={"tiny": tiny_encoder})
        with live_server(app, "/ready") as url:
            httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "persist me"})
            hits = app.state.hub.get("tiny").cache.hits
        assert hits == expected_hits
    assert list((tmp_path / "cache").glob("embeddings-*.sqlite"))


def test_disk_cache_without_memory_cache(settings, tiny_encoder, tmp_path):
    """EMBEDHUB_CACHE_MB=0 EMBEDHUB_CACHE_ON_DISK=1: the second identical request is a disk hit
    that never enters memory (it used to fail with a KeyError and a 500)."""
    configured = settings.model_copy(update={"home": tmp_path, "cache_mb": 0, "cache_on_disk": True})
    app = create_app(configured, encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        answers = [
            httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": ["disk only", "other"]})
            for _ in range(3)
        ]
        cache = app.state.hub.get("tiny").cache
        assert [answer.status_code for answer in answers] == [200, 200, 200], answers[-1].text
        assert answers[1].json()["data"] == answers[0].json()["data"] == answers[2].json()["data"]
        assert cache.hits == 4 and len(cache) == 0


# LONE stands for the JSON string "\ud800": a lone UTF-16 surrogate, valid JSON but not encodable text.


@pytest.mark.parametrize(
    ("route", "raw_body", "status", "needle"),
    [
        ("/v1/embeddings", '{"model": "tiny", "input": LONE}', 422, "surrogate"),
        ("/v1/embeddings", '{"model": "tiny", "input": ["ok", "a\\udfffb"]}', 422, "item 1"),
        ("/v1/embeddings", '{"model": LONE, "input": "x"}', 422, "surrogate"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "instruction": LONE}', 422, "surrogate"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "input_type": LONE}', 422, "surrogate"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "user": LONE}', 422, "surrogate"),
        ("/v1/embeddings", '{"model": "tiny", "input": [true]}', 422, "booleans"),
        ("/v1/embeddings", '{"model": "tiny", "input": [[1, true]]}', 422, "a boolean"),
        ("/v1/embeddings", '{"model": "tiny", "input": [1.0]}', 422, "numbers with a fraction"),
        ("/v1/embeddings", '{"model": "tiny", "input": [[2.5]]}', 422, "a number with a fraction"),
        ("/v1/embeddings", '{"model": "tiny", "input": ["a", 1]}', 422, "mixing"),
        ("/v1/embeddings", '{"model": "tiny", "input": [[1], "a"]}', 422, "mixing"),
        ("/v1/embeddings", '{"model": "tiny", "input": [[[1]]]}', 422, "holds a list"),
        ("/v1/embeddings", '{"model": "tiny", "input": [["a"]]}', 422, "holds a string"),
        ("/v1/embeddings", '{"model": "tiny", "input": [null]}', 422, "input"),
        ("/v1/embeddings", '{"model": "tiny", "input": {"a": 1}}', 422, "not an object"),
        ("/v1/embeddings", '{"model": "tiny", "input": 5}', 422, "not an integer"),
        ("/v1/embeddings", '{"model": "tiny", "input": ["ok", ""]}', 400, "input 1 is empty"),
        ("/v1/embeddings", '{"model": "tiny", "input": " \\n "}', 400, "empty"),
        ("/v1/embeddings", '{"model": "tiny", "input": [-1]}', 400, "refused"),
        ("/v1/embeddings", '{"model": "tiny", "input": [' + str(10**40) + "]}", 400, "refused"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "dimensions": true}', 422, "dimensions"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "dimensions": 32.0}', 422, "dimensions"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "dimensions": -1}', 400, "32..64"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "truncate": "yes"}', 422, "truncate"),
        ("/v1/embeddings", '{"model": "tiny", "input": "x", "truncate": 1}', 422, "truncate"),
        ("/v1/embeddings", b'{"model": "tiny", "input": "\xff\xfe"}', 400, "parsing the body"),
        ("/v1/embeddings", "[" * 100_000 + "]" * 100_000, 400, "parsing the body"),
        ("/tokenize", '{"model": "tiny", "input": LONE}', 422, "surrogate"),
        ("/tokenize", '{"model": "tiny", "input": ["x", LONE]}', 422, "item 1"),
        ("/tokenize", '{"model": "tiny", "input": [1, 2]}', 422, "holds an integer"),
        ("/tokenize", '{"model": "tiny", "input": []}', 400, "empty list"),
        ("/tokenize", '{"model": "tiny", "input": ""}', 400, "empty"),
    ],
)
def test_malformed_input_is_4xx_with_a_reason(server, route, raw_body, status, needle):
    body = raw_body if isinstance(raw_body, bytes) else raw_body.replace("LONE", '"\\ud800"').encode()
    response = httpx.post(server + route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_query_and_document_model_aliases(server, client, tiny_encoder):
    """Clients that cannot send input_type pick the kind with the model name: NAME:query."""
    text = "Explain gravity"
    as_query = tiny_encoder.encode([text], kind="query").vectors[0]
    as_document = tiny_encoder.encode([text], kind="document").vectors[0]
    assert not np.allclose(as_query, as_document, atol=1e-3)
    for name in ("tiny:query", "random-qwen3-tiny:query", "TINY:Query"):
        response = client.embeddings.create(model=name, input=text)
        np.testing.assert_allclose(response.data[0].embedding, as_query, atol=1e-6)
        assert response.model == "random-qwen3-tiny"
    document = client.embeddings.create(model="tiny:document", input=[text])
    np.testing.assert_allclose(document.data[0].embedding, as_document, atol=1e-6)
    # Open WebUI's RAG_EMBEDDING_PREFIX_FIELD_NAME=input_type sends the kind as a field.
    url = server + "/v1/embeddings"
    for kind, expected in (("query", as_query), ("document", as_document)):
        answer = httpx.post(url, json={"model": "tiny", "input": [text], "input_type": kind}).json()
        np.testing.assert_allclose(answer["data"][0]["embedding"], expected, atol=1e-6)
    agreeing = httpx.post(url, json={"model": "tiny:query", "input": text, "input_type": "query"})
    assert agreeing.status_code == 200
    conflict = httpx.post(url, json={"model": "tiny:query", "input": text, "input_type": "document"})
    assert conflict.status_code == 400 and "drop one of them" in conflict.json()["error"]["message"]
    unknown = httpx.post(url, json={"model": "tiny", "input": text, "input_type": "search_query"})
    assert unknown.status_code == 400 and "query, document" in unknown.json()["error"]["message"]
    missing = httpx.post(url, json={"model": "nope:query", "input": text})
    assert missing.status_code == 404 and "random-qwen3-tiny" in missing.json()["error"]["message"]
    with_instruction = httpx.post(url, json={"model": "tiny:document", "input": text, "instruction": "x"})
    assert with_instruction.status_code == 400
    tokens = httpx.post(server + "/tokenize", json={"model": "tiny:query", "input": text}).json()
    assert tokens["data"][0]["ids"] == tiny_encoder.tokenize([text], kind="query")[0]
    # Listing stays one entry per model; each card names its kind aliases.
    cards = {card.id: card for card in client.models.list().data}
    assert set(cards) == {"random-qwen3-tiny", "all-MiniLM-L6-v2"}
    assert cards["random-qwen3-tiny"].input_type_models == {
        "query": "random-qwen3-tiny:query",
        "document": "random-qwen3-tiny:document",
    }
    assert client.models.retrieve("tiny:query").id == "random-qwen3-tiny"


# `input` values: each OpenAI form, with text that includes lone surrogates and ids far outside
# any vocabulary, and any other JSON value.
_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
# (st.text() never yields surrogates, so the characters are joined by hand)
_ANY_TEXT = st.lists(st.characters(exclude_categories=()) | _SURROGATES, max_size=12).map("".join)
_IDS = st.integers(min_value=-(10**40), max_value=10**40) | st.integers(min_value=0, max_value=1000)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | _IDS | st.floats(allow_nan=False) | _ANY_TEXT,
    lambda children: st.lists(children, max_size=4),
    max_leaves=12,
)
_INPUTS = (
    _ANY_TEXT
    | st.lists(_ANY_TEXT, max_size=4)
    | st.lists(_IDS, max_size=4)
    | st.lists(st.lists(_IDS, max_size=4), max_size=3)
    | _JSON_VALUES
)


def test_generated_inputs_never_give_a_server_error(server):
    """Whatever `input`, `model` or `input_type` holds, the answer is 200 or a 4xx in OpenAI's format."""
    with httpx.Client(base_url=server, timeout=60) as http:

        @given(
            value=_INPUTS,
            model=st.sampled_from(["tiny", "tiny:query", "all-MiniLM-L6-v2:document", "TINY:Document"]),
            route=st.sampled_from(["/v1/embeddings", "/tokenize"]),
            input_type=st.sampled_from([None, None, None, "query", "document", "passage", "\udfff"]),
        )
        @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        def check(value, model, route, input_type):
            body = {"model": model, "input": value}
            if input_type is not None:
                body["input_type"] = input_type
            response = http.post(
                route, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, (body, response.text[:300])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["message"] and error["type"] == "invalid_request_error"

        check()


def test_error_body_survives_text_that_is_not_unicode():
    """An error message quoting client text with a lone surrogate must still serialise (a failing
    error handler resets the connection)."""
    from embedhub.server.errors import error_body

    body = json.loads(error_body("model 'x\ud800' is not served", "invalid_request_error"))
    assert body["error"]["message"] == "model 'x\\ud800' is not served"
