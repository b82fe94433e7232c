"""The real Open WebUI on a live `embedhub serve`, configured exactly as docs/open-webui.md says (slow).

Open WebUI lives in its own venv (`make install-clients`, `.venv-openwebui/`; another one through
OPENWEBUI_VENV). Both servers run as subprocesses on 127.0.0.1, offline, with throw-away data
folders. Through Open WebUI's own HTTP API the test signs up the admin, creates a knowledge base with
Open WebUI's default chunking, adds an English and a Chinese file, and checks that each question
finds its passage in the top 3, that Open WebUI embedded the question in embedhub's query form, and
that embedhub answered every embedding request without an error. With the reranking settings of the
same document (a tiny random reranker served by embedhub: the plumbing, not the quality), Open
WebUI's hybrid search returns exactly the order and scores embedhub's /v1/rerank gives its chunks,
and neither log has an error.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.clients.recipe import RERANK_MARKER, recipe_environment
from tests.conftest import ROOT, shared_data
from tests.live_server import free_port

pytestmark = pytest.mark.slow

OPENWEBUI_VENV = Path(os.environ.get("OPENWEBUI_VENV", ROOT / ".venv-openwebui"))
OPENWEBUI_BIN = OPENWEBUI_VENV / "bin" / "open-webui"

# Besides the recipe: no downloads, no version check, no chat-model list fetches (read from
# open_webui/env.py and config.py of 0.12.4).
OPENWEBUI_OFFLINE = {
    "OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "ENABLE_OLLAMA_API": "false",
    "ENABLE_OPENAI_API": "false",
    "WEBUI_SECRET_KEY": "test-secret-not-for-production",
}

# (file under ../shared/data, question, words of the passage that answers it)
CASES = [
    (
        ("long-docs-en", "wiki_rainbow.txt"),
        "Why is the secondary rainbow fainter than the primary?",
        "The secondary rainbow is fainter than the primary because more light escapes",
    ),
    (
        ("long-docs-zh", "laws", "行政法__个人信息保护法(2021-08-20).md"),
        "处理不满十四周岁儿童的个人信息需要谁同意？",
        "应当取得未成年人的父母或者其他监护人的同意",
    ),
]

STARTUP_SECONDS = 300
PROCESSING_SECONDS = 600


def _log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def _server(command: list[str], env: dict[str, str], cwd: Path, log: Path, ready_url: str) -> Iterator[None]:
    """A subprocess answering 200 on ready_url; stopped (then killed) on exit."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{_log_tail(log)}")
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} not ready in {STARTUP_SECONDS}s:\n{_log_tail(log)}")
                time.sleep(0.5)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _embedding_requests(metrics_text: str, route: str = "/v1/embeddings") -> dict[str, int]:
    """embedhub's request counter for a route, by HTTP status."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "embedhub_requests_total" and sample.labels.get("route") == route:
                counts[sample.labels["status"]] = int(sample.value)
    return counts


def _metric(metrics_text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    )


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def _wait_for_processing(client: httpx.Client, file_id: str) -> dict:
    deadline = time.monotonic() + PROCESSING_SECONDS
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/files/{file_id}/process/status").json()
        if status["status"] in ("completed", "failed"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"file {file_id} still processing after {PROCESSING_SECONDS}s")


def test_open_webui_knowledge_base_on_embedhub(tmp_path, tiny_reranker_dir):
    if not OPENWEBUI_BIN.exists():
        pytest.skip(f"Open WebUI is not installed at {OPENWEBUI_VENV} (run `make install-clients`)")
    documents = [(shared_data(*parts), question, passage) for parts, question, passage in CASES]

    recipe = recipe_environment()
    embed_port, webui_port = free_port(), free_port()
    default_base = recipe["RAG_OPENAI_API_BASE_URL"]
    recipe["RAG_OPENAI_API_BASE_URL"] = default_base.replace(":8000/", f":{embed_port}/")
    assert recipe["RAG_OPENAI_API_BASE_URL"] != default_base, "the recipe's base URL no longer uses port 8000"
    embedhub_url = f"http://127.0.0.1:{embed_port}"
    webui_url = f"http://127.0.0.1:{webui_port}"
    key = recipe["RAG_OPENAI_API_KEY"]
    model = recipe["RAG_EMBEDDING_MODEL"]
    rerank = recipe_environment(marker=RERANK_MARKER)
    default_rerank_url = rerank["RAG_EXTERNAL_RERANKER_URL"]
    rerank["RAG_EXTERNAL_RERANKER_URL"] = default_rerank_url.replace(":8000/", f":{embed_port}/")
    assert rerank["RAG_EXTERNAL_RERANKER_URL"] != default_rerank_url
    assert rerank["RAG_EXTERNAL_RERANKER_API_KEY"] == key

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDHUB_", "RAG_", "PYTHON"))}
    embedhub_env = {
        **base_env,
        "EMBEDHUB_HOME": str(tmp_path / "embedhub-home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    serve = [sys.executable, "-m", "embedhub.cli", "serve", "--model", model, "--api-key", key]
    serve += ["--host", "127.0.0.1", "--port", str(embed_port), "--log-level", "warning"]
    serve += ["--reranker", str(tiny_reranker_dir)]  # the docs' Qwen3-Reranker-0.6B, as random weights
    webui = [str(OPENWEBUI_BIN), "serve", "--host", "127.0.0.1", "--port", str(webui_port)]
    webui_log = tmp_path / "open-webui.log"
    started = time.monotonic()
    with (
        _server(serve, embedhub_env, ROOT, tmp_path / "embedhub.log", embedhub_url + "/ready"),
        httpx.Client(base_url=embedhub_url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as hub,
    ):
        served = hub.get("/v1/models").json()["data"]
        rerank["RAG_RERANKING_MODEL"] = next(card["id"] for card in served if card.get("type") == "reranker")
        webui_env = {**base_env, **OPENWEBUI_OFFLINE, **recipe, **rerank}
        webui_env["DATA_DIR"] = str(tmp_path / "open-webui-data")
        with (
            _server(webui, webui_env, tmp_path, webui_log, webui_url + "/health"),
            httpx.Client(base_url=webui_url, timeout=600) as webui_api,
        ):
            startup_seconds = time.monotonic() - started
            metrics = _knowledge_base_round(webui_api, hub, documents, model)
    _check_requests(*metrics, startup_seconds, webui_log)


def _knowledge_base_round(webui_api: httpx.Client, hub: httpx.Client, documents, model: str) -> tuple:
    """Sign up, build the knowledge base, ask each question densely and then with reranking;
    returns embedhub's metrics after the questions, after indexing and at the end."""
    account = {"name": "Admin", "email": "admin@example.com", "password": "a-test-password-1"}
    signup = webui_api.post("/api/v1/auths/signup", json=account)
    assert signup.status_code == 200, signup.text
    assert signup.json()["role"] == "admin"
    webui_api.headers["Authorization"] = f"Bearer {signup.json()['token']}"

    created = webui_api.post("/api/v1/knowledge/create", json={"name": "docs", "description": "tests"})
    assert created.status_code == 200, created.text
    knowledge_id = created.json()["id"]

    failures = []
    for path, _, _ in documents:
        with path.open("rb") as handle:
            upload = webui_api.post("/api/v1/files/", files={"file": (path.name, handle, "text/plain")})
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["id"]
        status = _wait_for_processing(webui_api, file_id)
        added = webui_api.post(f"/api/v1/knowledge/{knowledge_id}/file/add", json={"file_id": file_id})
        if status["status"] != "completed" or added.status_code != 200:
            failures.append(f"{path.name}: processing {status}, knowledge add {added.text[:300]}")
    metrics_after_indexing = hub.get("/metrics").text
    assert not failures, "Open WebUI failed files:\n" + "\n".join(failures)

    knowledge = webui_api.get(f"/api/v1/knowledge/{knowledge_id}/files").json()
    listed = {item["filename"] for item in knowledge["items"]}
    assert listed == {path.name for path, _, _ in documents}

    answers = []
    for _, question, passage in documents:
        # /query/doc honours hybrid=false; /query/collection would still rerank (Open WebUI 0.12.4)
        found = webui_api.post(
            "/api/v1/retrieval/query/doc",
            json={"collection_name": knowledge_id, "query": question, "k": 3, "hybrid": False},
        )
        assert found.status_code == 200, found.text
        texts, scores = found.json()["documents"][0], found.json()["distances"][0]
        flat = [" ".join(text.split()) for text in texts]
        assert any(passage in text for text in flat), f"{question!r} -> top 3: {flat} {scores}"
        answers.append((question, texts[0], scores[0]))
    metrics_text = hub.get("/metrics").text

    # Open WebUI's score is (1 + cosine) / 2 (Chroma cosine distance, rescaled). It matches
    # embedhub's query-form vector, not the document form: the `input_type` field got through.
    for question, top_text, score in answers:
        forms = {}
        for kind in ("query", "document"):
            body = {"model": model, "input": [question, top_text.replace("\n", " ")], "input_type": kind}
            vectors = [item["embedding"] for item in hub.post("/v1/embeddings", json=body).json()["data"]]
            if kind == "document":
                document_vector = vectors[1]
            forms[kind] = vectors[0]
        reported = 2 * score - 1
        as_query = _cosine(forms["query"], document_vector)
        as_document = _cosine(forms["document"], document_vector)
        assert abs(reported - as_query) < 2e-3, (question, reported, as_query, as_document)
        assert abs(reported - as_query) < abs(reported - as_document)

    # Hybrid search with the external reranker: Open WebUI's kept chunks and their scores are
    # exactly what embedhub's /v1/rerank gives those chunks (a failed call would leave the
    # hybrid order, silently), best first.
    for _, question, _ in documents:
        before = _embedding_requests(hub.get("/metrics").text, "/v1/rerank").get("200", 0)
        found = webui_api.post(
            "/api/v1/retrieval/query/collection",
            json={"collection_names": [knowledge_id], "query": question, "k": 6, "hybrid": True},
        )
        assert found.status_code == 200, found.text
        after = _embedding_requests(hub.get("/metrics").text, "/v1/rerank").get("200", 0)
        assert after == before + 1, "Open WebUI did not call embedhub's /v1/rerank"
        texts, scores = found.json()["documents"][0], found.json()["distances"][0]
        assert 1 <= len(texts) <= 3, texts  # RAG_TOP_K_RERANKER
        asked = {"query": question, "documents": texts, "return_documents": False}
        ranked = hub.post("/v1/rerank", json=asked).json()["results"]
        # Open WebUI scored these among its 6 candidates in one request; alone they are padded
        # differently, which moves a bfloat16 reranker's scores by ~2e-3 (float32: ~1e-6)
        ours = {result["index"]: result["relevance_score"] for result in ranked}
        assert scores == sorted(scores, reverse=True), scores
        for index, score in enumerate(scores):
            assert abs(ours[index] - score) < 1e-2, (ranked, scores)
    return metrics_text, metrics_after_indexing, hub.get("/metrics").text


def _check_requests(
    metrics_text: str, after_indexing: str, final_metrics: str, startup_seconds: float, webui_log: Path
) -> None:
    reranks = _embedding_requests(final_metrics, "/v1/rerank")
    assert reranks.get("200", 0) >= 2 and set(reranks) == {"200"}, reranks
    assert "Error in external reranking" not in webui_log.read_text(encoding="utf-8", errors="replace")
    requests = _embedding_requests(metrics_text)
    indexing_requests = sum(_embedding_requests(after_indexing).values())
    served = requests.get("200", 0)
    errors = {status: count for status, count in requests.items() if status != "200"}
    summary = {
        "startup_seconds": round(startup_seconds, 1),
        "embedding_requests": requests,
        "indexing_requests": indexing_requests,
        "query_requests": sum(requests.values()) - indexing_requests,
        "inputs": _metric(metrics_text, "embedhub_inputs_total"),
        "forward_passes": _metric(metrics_text, "embedhub_batch_items_count"),
        "cache_hits": _metric(metrics_text, "embedhub_cache_hits"),
        "cache_misses": _metric(metrics_text, "embedhub_cache_misses"),
        "truncated_inputs": _metric(metrics_text, "embedhub_truncated_inputs_total"),
        "rerank_requests": reranks,
    }
    print("open-webui on embedhub:", json.dumps(summary))
    assert served > 0 and not errors, summary
