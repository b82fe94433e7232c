"""The OpenAI-compatible server, driven by the official `openai` client against a live server."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

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


def test_token_id_inputs(client, tiny_encoder):
    ids = tiny_encoder.content_ids(["hello world", "second"])
    single = client.embeddings.create(model="tiny", input=ids[0])
    double = client.embeddings.create(model="tiny", input=ids)
    expected = tiny_encoder.encode(["hello world", "second"]).vectors
    np.testing.assert_allclose(single.data[0].embedding, expected[0], atol=1e-6)
    np.testing.assert_allclose([d.embedding for d in double.data], expected, atol=1e-6)
    assert single.usage.prompt_tokens == len(ids[0]) + 1


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
        ({"model": "all-MiniLM-L6-v2", "input": "word " * 400}, 400, "limit of 256"),
        ({"model": "tiny", "input": [[1, 2, 10**9]]}, 400, "outside the vocabulary"),
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


def test_over_long_input_counts_and_truncates(server):
    url = server + "/v1/embeddings"
    refused = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": "word " * 400})
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    assert "402 tokens" in refused.json()["error"]["message"]
    cut = httpx.post(url, json={"model": "all-MiniLM-L6-v2", "input": "word " * 400, "truncate": True})
    assert cut.status_code == 200 and cut.json()["usage"]["prompt_tokens"] == 256


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
        gated.gate.set()  # let the warm-up style first call through quickly
        gated.gate.clear()
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
    with pytest.raises(EmbedhubError, match="without an API key"):
        check_bind_policy(settings.model_copy(update={"host": "0.0.0.0"}))
    check_bind_policy(settings.model_copy(update={"host": "0.0.0.0", "api_keys": ["k"]}))
    check_bind_policy(settings.model_copy(update={"host": "0.0.0.0", "allow_public": True}))


def test_disk_cache_survives_restart(settings, tiny_encoder, tmp_path):
    configured = settings.model_copy(update={"home": tmp_path, "cache_on_disk": True})
    for expected_hits in (0, 1):
        app = create_app(configured, encoders={"tiny": tiny_encoder})
        with live_server(app, "/ready") as url:
            httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": "persist me"})
            hits = app.state.hub.get("tiny").cache.hits
        assert hits == expected_hits
    assert list((tmp_path / "cache").glob("embeddings-*.sqlite"))
