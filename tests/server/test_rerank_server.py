"""POST /v1/rerank (vLLM / Jina / Cohere shape) and POST /rerank (TEI shape) on a live server with
the tiny random Qwen3-Reranker: scores, ordering, limits, errors, auth, metrics, the shared queue,
/v1/models, and knowledge-base search with a rerank stage over HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from embedhub.kb.ingest import Ingestor
from embedhub.models.reranker import Reranker
from embedhub.server.app import create_app
from tests.live_server import live_server

QUERY = "What is the capital of China?"
DOCUMENTS = [
    "Gravity attracts bodies.",
    "The capital of China is Beijing.",
    "北京是中国的首都。",
    "Paris is in France.",
    "def capital(): return 'Beijing'",
]


class SlowReranker(Reranker):
    """The tiny reranker with a pause per forward pass, so concurrent requests queue up."""

    def __init__(self, inner: Reranker, pause: float) -> None:
        self.inner, self.pause, self.spec = inner, pause, inner.spec
        self.backend = inner.backend
        self.passes: list[int] = []

    def tokenize_pairs(self, query, documents, **options):
        return self.inner.tokenize_pairs(query, documents, **options)

    def run_padded(self, batch):
        return self.inner.run_padded(batch)

    def score_inputs(self, inputs):
        time.sleep(self.pause)
        self.passes.append(len(inputs))
        return self.inner.score_inputs(inputs)


@pytest.fixture(scope="module")
def slow_reranker(tiny_reranker):
    return SlowReranker(tiny_reranker, 0.2)


@pytest.fixture(scope="module")
def server(settings, tiny_encoder, slow_reranker, tmp_path_factory):
    app = create_app(
        settings.model_copy(
            update={
                "home": tmp_path_factory.mktemp("rerank-home"),
                "max_items_per_request": 16,
                "max_input_tokens": 256,  # below the model's 8192: long pairs stay cheap to run
            }
        ),
        encoders={"tiny": tiny_encoder},
        rerankers={"tiny-reranker": slow_reranker},
    )
    with live_server(app, "/ready") as url:
        yield url, app


@pytest.fixture(scope="module")
def url(server):
    return server[0]


def test_rerank_as_cohere_jina_and_vllm_clients_send_it(url, tiny_reranker):
    answer = httpx.post(
        url + "/v1/rerank",
        json={"model": "tiny-reranker", "query": QUERY, "documents": DOCUMENTS, "top_n": 3},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = tiny_reranker.score_pairs(QUERY, DOCUMENTS)
    assert body["model"] == tiny_reranker.name and body["id"].startswith("rerank-")
    best = list(np.argsort(-expected)[:3])
    assert [result["index"] for result in body["results"]] == best
    for result in body["results"]:
        assert result["relevance_score"] == pytest.approx(float(expected[result["index"]]), abs=1e-5)
        assert result["document"] == {"text": DOCUMENTS[result["index"]]}
    tokens = sum(len(pair) for pair in tiny_reranker.tokenize_pairs(QUERY, DOCUMENTS))
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == tokens


def test_document_objects_and_no_documents_returned(url, tiny_reranker):
    body = httpx.post(
        url + "/v1/rerank",
        json={
            "query": QUERY,
            "documents": [{"text": text} for text in DOCUMENTS[:3]],
            "return_documents": False,
            "instruction": "Find the city",
        },
        timeout=30,
    ).json()
    expected = tiny_reranker.score_pairs(QUERY, DOCUMENTS[:3], instruction="Find the city")
    assert len(body["results"]) == 3 and all("document" not in result for result in body["results"])
    scores = {result["index"]: result["relevance_score"] for result in body["results"]}
    np.testing.assert_allclose([scores[i] for i in range(3)], expected, atol=1e-5)


def test_tei_rerank_shape(url, tiny_reranker):
    answer = httpx.post(
        url + "/rerank", json={"query": QUERY, "texts": DOCUMENTS, "return_text": True}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    ranks = answer.json()
    expected = tiny_reranker.score_pairs(QUERY, DOCUMENTS)
    assert [rank["index"] for rank in ranks] == list(np.argsort(-expected))
    assert all(rank["text"] == DOCUMENTS[rank["index"]] for rank in ranks)
    plain = httpx.post(url + "/rerank", json={"query": QUERY, "texts": DOCUMENTS[:2]}, timeout=30).json()
    assert all(set(rank) == {"index", "score"} for rank in plain)


def test_errors_are_openai_style_with_limits(url):
    def error(path, payload):
        answer = httpx.post(url + path, json=payload, timeout=30)
        return answer.status_code, answer.json()["error"]

    status, body = error("/v1/rerank", {"model": "other", "query": QUERY, "documents": ["x"]})
    assert (
        status == 404
        and body["code"] == "reranker_not_loaded"
        and "random-qwen3-reranker-tiny" in body["message"]
    )
    status, body = error("/v1/rerank", {"query": QUERY, "documents": []})
    assert status == 400 and "empty list" in body["message"]
    status, body = error("/v1/rerank", {"query": QUERY, "documents": ["x"] * 17})
    assert status == 413 and "limit of 16" in body["message"]
    status, body = error("/v1/rerank", {"query": QUERY, "documents": [1, 2]})
    assert status == 422 and body["code"] == "invalid_schema"
    status, body = error("/v1/rerank", {"query": QUERY, "documents": ["x"], "top_n": 0})
    assert status == 422
    status, body = error("/v1/rerank", {"query": "   ", "documents": ["x"]})
    assert status == 400 and "query is empty" in body["message"]
    long_text = "Beijing is a city. " * 100  # past the server's 256-token limit
    status, body = error("/v1/rerank", {"query": QUERY, "documents": [long_text], "truncate": False})
    assert (
        status == 400 and body["code"] == "context_length_exceeded" and '"truncate": true' in body["message"]
    )
    cut = httpx.post(url + "/v1/rerank", json={"query": QUERY, "documents": [long_text]}, timeout=60).json()
    assert cut["usage"]["truncated_inputs"] == 1 and cut["usage"]["prompt_tokens"] == 256
    status, body = error("/rerank", {"query": QUERY, "texts": []})
    assert status == 400


def test_models_list_the_reranker(url):
    cards = httpx.get(url + "/v1/models").json()["data"]
    by_type = {card["type"]: card for card in cards}
    assert by_type["embedding"]["id"] == "random-qwen3-tiny"
    reranker = by_type["reranker"]
    assert reranker["id"] == "random-qwen3-reranker-tiny" and reranker["dimensions"] is None
    assert (
        reranker["max_tokens"] == 256
        and reranker["random_weights"]
        and "tiny-reranker" in reranker["aliases"]
    )
    assert httpx.get(url + "/v1/models/tiny-reranker").json()["type"] == "reranker"
    assert httpx.get(url + "/v1/info").json()["reranker"]["id"] == "random-qwen3-reranker-tiny"


def test_concurrent_requests_share_forward_passes_and_are_counted(url, slow_reranker):
    slow_reranker.passes.clear()
    payload = {"query": QUERY, "documents": DOCUMENTS[:2]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(url + "/v1/rerank", json=payload, timeout=60), range(8)))
    assert all(answer.status_code == 200 for answer in answers)
    first = answers[0].json()["results"]
    assert all(answer.json()["results"] == first for answer in answers)
    # 16 pairs from 8 requests: merged, the passes are fewer than the requests and hold several
    assert sum(slow_reranker.passes) == 16 and len(slow_reranker.passes) < 8 and max(slow_reranker.passes) > 2
    metrics = httpx.get(url + "/metrics").text
    assert 'embedhub_rerank_pairs_total{model="random-qwen3-reranker-tiny"}' in metrics
    assert 'embedhub_requests_total{route="/v1/rerank",status="200"}' in metrics
    assert 'embedhub_model_backend{backend="torch",model="random-qwen3-reranker-tiny"} 1.0' in metrics


def test_kb_search_reranks_with_the_served_reranker(server, tiny_encoder, tiny_reranker, tmp_path):
    url, app = server
    knowledge_base = app.state.knowledge_base
    collection = knowledge_base.create("notes", tiny_encoder, model_reference="tiny", chunk_tokens=64)
    folder = tmp_path / "notes"
    folder.mkdir()
    for index, text in enumerate(DOCUMENTS):
        (folder / f"note{index}.txt").write_text(text)
    Ingestor(collection, tiny_encoder).ingest([folder])
    search = url + "/v1/collections/notes/search"
    plain = httpx.post(search, json={"query": QUERY, "k": 5}, timeout=30).json()["results"]
    assert all(row["rerank_score"] is None for row in plain)
    answer = httpx.post(search, json={"query": QUERY, "k": 3, "rerank": True}, timeout=30)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["results"]
    texts = [row["text"] for row in plain]
    expected = dict(zip(texts, tiny_reranker.score(QUERY, texts), strict=True))
    assert [row["text"] for row in rows] == sorted(expected, key=expected.get, reverse=True)[:3]
    for row in rows:
        assert "rerank:random-qwen3-reranker-tiny" in row["retrievers"]
        assert row["rerank_score"] == pytest.approx(expected[row["text"]], abs=1e-5) == row["score"]
    threshold = rows[1]["rerank_score"]
    kept = httpx.post(
        search, json={"query": QUERY, "k": 5, "rerank": True, "min_score": threshold, "rerank_candidates": 5}
    ).json()["results"]
    assert [row["text"] for row in kept] == [row["text"] for row in rows[:2]]
    refused = httpx.post(search, json={"query": QUERY, "min_score": 0.5})
    assert refused.status_code == 400 and "min_score" in refused.json()["error"]["message"]
    # ask sends the reranker's best passages, in its order (no chat endpoint here: the evidence)
    asked = httpx.post(
        url + "/v1/collections/notes/ask",
        json={"question": QUERY, "k": 3, "rerank": True, "stream": False},
        timeout=30,
    )
    assert asked.status_code == 200, asked.text
    evidence = asked.json()["evidence"]
    assert [item["text"] for item in evidence] == [row["text"] for row in rows]
    assert all("rerank:random-qwen3-reranker-tiny" in item["retrievers"] for item in evidence)


def test_without_a_reranker_rerank_says_how_to_start_one(settings, tiny_encoder, tmp_path):
    app = create_app(
        settings.model_copy(update={"home": tmp_path / "home", "api_keys": ["secret"]}),
        encoders={"tiny": tiny_encoder},
    )
    with live_server(app, "/ready") as url:
        headers = {"Authorization": "Bearer secret"}
        assert httpx.post(url + "/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 401
        assert httpx.post(url + "/rerank", json={"query": "q", "texts": ["d"]}).status_code == 401
        answer = httpx.post(url + "/v1/rerank", json={"query": "q", "documents": ["d"]}, headers=headers)
        assert answer.status_code == 404 and "embedhub serve --reranker" in answer.json()["error"]["message"]
        assert [card["type"] for card in httpx.get(url + "/v1/models", headers=headers).json()["data"]] == [
            "embedding"
        ]
        app.state.knowledge_base.create("empty", tiny_encoder, model_reference="tiny")
        search = httpx.post(
            url + "/v1/collections/empty/search", json={"query": "q", "rerank": True}, headers=headers
        )
        assert search.status_code == 400 and "embedhub serve --reranker" in search.json()["error"]["message"]
        asked = httpx.post(
            url + "/v1/collections/empty/ask",
            json={"question": "q", "rerank": True, "stream": False},
            headers=headers,
        )
        assert asked.status_code == 400 and "embedhub serve --reranker" in asked.json()["error"]["message"]
