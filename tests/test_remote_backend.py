"""The remote backend against live embedhub servers started here (two at once, one killed
mid-run) and small stand-in servers that answer 503, 429, 500, 400 or hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from embedhub.bench.scale import wait_ready
from embedhub.errors import ConfigurationError, ModelLoadError
from embedhub.models.backends import load_encoder
from embedhub.models.loading import resolve
from embedhub.models.remote import (
    RemoteEndpointError,
    RemoteRefusedError,
    base_url,
    parse_reference,
)
from embedhub.models.spec import InputKind
from embedhub.server.app import create_app
from tests.live_server import free_port, live_server

ROOT = Path(__file__).resolve().parents[1]
MODEL = "random-qwen3-tiny"  # the name the tiny random Qwen3 is served under
#: the endpoints run the same float32 torch model; vectors differ only by batch composition
TOLERANCE = 1e-5
DOCUMENTS = [
    "The alpha particle is a helium nucleus.",
    "Beta decay emits an electron or a positron.",
    "Gamma rays are high-energy photons.",
    "Le chat dort sur le canapé.",
    "量子力学描述微观粒子。",
]
QUERY = "what is an alpha particle"


def many_texts(count: int) -> list[str]:
    return [
        f"document {i}: " + " ".join(f"word{(i * 7 + j) % 97}" for j in range(5 + i % 40))
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def endpoints(settings, tiny_model_dir):
    """Two live embedhub servers, each with its own copy of the tiny model."""
    apps = [
        create_app(settings, encoders={"tiny": load_encoder(str(tiny_model_dir), settings)}) for _ in range(2)
    ]
    with live_server(apps[0], "/ready") as first, live_server(apps[1], "/ready") as second:
        yield [first, second]


def remote_settings(settings, **updates):
    return settings.model_copy(update={"backend": "auto", "remote_max_batch": 4, **updates})


def remote_reference(*urls: str, name: str = MODEL) -> str:
    return "remote:" + ",".join(urls) + (f"#{name}" if name else "")


def embeddings_requests(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith('embedhub_requests_total{route="/v1/embeddings"') and 'status="200"' in line:
            return float(line.split()[-1])
    return 0.0


def test_references_name_endpoints_and_model(settings):
    parsed = parse_reference("remote:http://127.0.0.1:9/v1,http://127.0.0.1:10/#m", settings)
    assert parsed.endpoints == ("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1") and parsed.name == "m"
    configured = settings.model_copy(update={"remote_endpoints": {"m": ["http://127.0.0.1:9"]}})
    assert parse_reference("remote:m", configured).endpoints == ("http://127.0.0.1:9/v1",)
    with pytest.raises(ModelLoadError, match="EMBEDHUB_REMOTE_ENDPOINTS"):
        parse_reference("remote:unknown", settings)
    with pytest.raises(ModelLoadError, match="not an http"):
        base_url("ftp://host")
    assert base_url("http://127.0.0.1:7997/embed/") == "http://127.0.0.1:7997/embed"  # a path: as given


def test_an_endpoint_without_a_models_route_is_described_by_a_probe(settings):
    """TEI-like: no GET /v1/models; the dimensions come from one embedding, the rules from the name."""
    with StandIn(card={}) as stand_in:
        stand_in.card = None  # the GET answers 404
        spec = resolve(f"remote:{stand_in.url}#some-model", settings).spec
    assert spec.dimensions == 4 and spec.name == "some-model" and stand_in.posts == 1
    assert not spec.supports_instructions and not spec.supports_mrl


def test_remote_vectors_equal_local_ones(settings, endpoints, tiny_encoder):
    """Queries (with the Qwen3 instruction), documents and an MRL size, through both endpoints."""
    encoder = load_encoder(remote_reference(*endpoints), remote_settings(settings))
    try:
        assert encoder.backend == "remote" and encoder.spec.name == MODEL
        assert encoder.spec.supports_instructions and encoder.native_dims == tiny_encoder.native_dims
        for kind in ("document", "query"):
            for dimensions in (None, 32):
                remote = encoder.encode(DOCUMENTS, kind=kind, dimensions=dimensions)
                local = tiny_encoder.encode(DOCUMENTS, kind=kind, dimensions=dimensions)
                assert remote.vectors.shape == local.vectors.shape
                np.testing.assert_allclose(remote.vectors, local.vectors, atol=TOLERANCE)
                assert remote.token_counts == local.token_counts
        query = encoder.encode([QUERY], kind="query").vectors[0]
        as_document = encoder.encode([QUERY]).vectors[0]
        assert np.abs(query - as_document).max() > 1e-3  # the instruction was applied
        # the endpoints counted the same tokens as the client tokenizer
        counted = encoder.encode(DOCUMENTS)
        before = encoder.stats.endpoint_tokens
        encoder.encode(DOCUMENTS)
        assert encoder.stats.endpoint_tokens - before == counted.prompt_tokens
    finally:
        encoder.close()


def test_load_is_spread_over_both_endpoints(settings, endpoints, tiny_encoder):
    before = [embeddings_requests(url) for url in endpoints]
    encoder = load_encoder(remote_reference(*endpoints), remote_settings(settings))
    try:
        texts = many_texts(64)
        vectors = encoder.encode(texts).vectors
    finally:
        encoder.close()
    np.testing.assert_allclose(vectors, tiny_encoder.encode(texts).vectors, atol=TOLERANCE)
    after = [embeddings_requests(url) for url in endpoints]
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert min(served) >= 3, served  # 16 requests of 4 inputs: both endpoints took a share
    assert sum(encoder.stats.per_endpoint.values()) == 64


@contextmanager
def embedhub_process(model_dir: Path, home: Path):
    """`embedhub serve` in its own process, so it can be killed for real (SIGKILL)."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "EMBEDHUB_HOME": str(home),
        "EMBEDHUB_THREADS": "1",
        "EMBEDHUB_BACKEND": "torch",
    }
    command = [sys.executable, "-c", "from embedhub.cli import app; app()", "serve",
               "--model", str(model_dir), "--port", str(port), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, timeout=120)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        process.stderr.close()


def test_an_endpoint_killed_mid_run_loses_and_duplicates_nothing(settings, endpoints, tiny_encoder, tmp_path,
                                                                   tiny_model_dir):  # fmt: skip
    texts = many_texts(240)
    expected = tiny_encoder.encode(texts).vectors
    with embedhub_process(tiny_model_dir, tmp_path / "home") as (doomed, process):
        encoder = load_encoder(
            remote_reference(endpoints[0], doomed), remote_settings(settings, remote_max_batch=2)
        )
        killed_at: list[float] = []

        def kill_after_some_answers() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if encoder.stats.per_endpoint.get(doomed + "/v1", 0) >= 6:
                    process.send_signal(signal.SIGKILL)
                    killed_at.append(time.monotonic())
                    return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_after_some_answers)
        killer.start()
        try:
            result = encoder.encode(texts)
            finished_at = time.monotonic()
        finally:
            killer.join()
            encoder.close()
    assert killed_at and killed_at[0] < finished_at, "the endpoint was not killed mid-run"
    assert result.vectors.shape == expected.shape
    np.testing.assert_allclose(result.vectors, expected, atol=TOLERANCE)  # all there, in order
    answered = encoder.stats.per_endpoint
    assert answered[doomed + "/v1"] >= 6 and answered[endpoints[0] + "/v1"] > 0
    assert sum(answered.values()) == len(texts)  # each input answered exactly once
    assert encoder.stats.retries >= 1


class StandIn:
    """A tiny OpenAI-style embeddings server: answers POSTs with the statuses in `script` (then
    200), optionally after `delay` seconds. Vectors are [len(text), 1, 2, 3]."""

    def __init__(self, script=(), *, delay: float = 0.0, retry_after: str | None = None, card=None) -> None:
        self.card = card or {"id": "stand-in", "object": "model", "dimensions": 4, "max_tokens": 512,
                             "instruction_aware": True}  # fmt: skip
        self.script = list(script)
        self.delay = delay
        self.retry_after = retry_after
        self.posts = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if stand_in.card is None:
                    self._json(404, {"detail": "Not Found"})
                    return
                self._json(200, {"object": "list", "data": [stand_in.card]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.posts += 1
                status = stand_in.script.pop(0) if stand_in.script else 200
                time.sleep(stand_in.delay)
                if status != 200:
                    headers = {"Retry-After": stand_in.retry_after} if stand_in.retry_after else {}
                    self._json(status, {"error": {"message": f"scripted {status}"}}, headers)
                    return
                data = [
                    {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 2.0, 3.0]}
                    for i, text in enumerate(request["input"])
                ]
                self._json(200, {"object": "list", "data": data, "usage": {"prompt_tokens": len(data)}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def expected_stand_in(encoder, texts: list[str]) -> np.ndarray:
    """What the stand-in returns for documents, normalised."""
    lengths = [len(text) for text in encoder.texts_of(encoder.tokenize(texts))]
    rows = np.array([[n, 1.0, 2.0, 3.0] for n in lengths], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("status", [503, 429])
def test_overloaded_endpoint_is_retried_after_retry_after(settings, status):
    with StandIn([status], retry_after="1") as stand_in:
        encoder = load_encoder(f"remote:{stand_in.url}", remote_settings(settings))
        try:
            started = time.monotonic()
            vectors = encoder.encode(["hello", "world!"]).vectors
            elapsed = time.monotonic() - started
        finally:
            encoder.close()
    np.testing.assert_allclose(vectors, expected_stand_in(encoder, ["hello", "world!"]), atol=1e-6)
    assert stand_in.posts == 2 and encoder.stats.retries == 1
    assert elapsed >= 0.9  # the one endpoint was left alone for its Retry-After second


def test_an_endpoint_that_always_fails_gives_a_clear_error(settings):
    with StandIn([500] * 10) as stand_in:
        encoder = load_encoder(f"remote:{stand_in.url}", remote_settings(settings, remote_retries=3))
        try:
            with pytest.raises(RemoteEndpointError) as raised:
                encoder.encode(["hello"])
        finally:
            encoder.close()
    assert stand_in.posts == 3
    message = str(raised.value)
    assert stand_in.url in message and "HTTP 500" in message and "failed 3 times" in message


def test_a_refusal_is_not_retried(settings):
    with StandIn([400]) as stand_in:
        encoder = load_encoder(f"remote:{stand_in.url}", remote_settings(settings))
        try:
            with pytest.raises(RemoteRefusedError, match="scripted 400"):
                encoder.encode(["hello"])
        finally:
            encoder.close()
    assert stand_in.posts == 1


def test_a_hung_endpoint_times_out_and_its_work_moves(settings):
    with StandIn(delay=3.0) as hung, StandIn() as healthy:
        fast = remote_settings(settings, remote_timeout=0.5, remote_retries=3)
        encoder = load_encoder(f"remote:{hung.url},{healthy.url}#stand-in", fast)
        try:
            started = time.monotonic()
            texts = [f"text number {i}" for i in range(12)]
            vectors = encoder.encode(texts).vectors
            elapsed = time.monotonic() - started
        finally:
            encoder.close()
        alone = load_encoder(
            f"remote:{hung.url}", remote_settings(settings, remote_timeout=0.3, remote_retries=2)
        )
        try:
            with pytest.raises(RemoteEndpointError, match="timed out"):
                alone.encode(["hello"])
        finally:
            alone.close()
    np.testing.assert_allclose(vectors, expected_stand_in(encoder, texts), atol=1e-6)
    assert elapsed < 2.5 and hung.posts >= 1 and encoder.stats.per_endpoint == {healthy.url: 12}


def test_remote_models_run_only_with_the_remote_backend(settings, endpoints, tiny_model_dir):
    with pytest.raises(ConfigurationError, match="only the remote backend"):
        load_encoder(remote_reference(*endpoints), settings)  # settings.backend is torch
    with pytest.raises(ConfigurationError, match="local weights"):
        load_encoder(str(tiny_model_dir), settings.model_copy(update={"backend": "remote"}))
    assert resolve(remote_reference(endpoints[0], name=""), settings).spec.name == MODEL  # its only model


def test_a_registry_name_gives_its_rules_within_the_endpoints_limit(settings):
    """A vLLM-like card says only max_model_len: the registry spec gives the Qwen3 rules and MRL,
    and inputs are cut to what the endpoint takes."""
    card = {"id": "Qwen3-Embedding-0.6B", "object": "model", "max_model_len": 512}
    with StandIn(card=card) as stand_in:
        spec = resolve(f"remote:{stand_in.url}#Qwen3-Embedding-0.6B", settings).spec
    assert spec.name == "Qwen3-Embedding-0.6B" and spec.dimensions == 1024
    assert spec.supports_instructions and spec.supports_mrl and spec.max_tokens == 512


def test_knowledge_base_over_remote_endpoints(endpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EMBEDHUB_REMOTE_ENDPOINTS", json.dumps({MODEL: endpoints}))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "b.txt").write_text("Beta decay emits an electron.")
    from embedhub.cli import app

    created = runner.invoke(
        app, ["kb", "create", "physics", "--model", f"remote:{MODEL}", "--dimensions", "32"]
    )
    assert created.exit_code == 0, created.output
    added = runner.invoke(app, ["kb", "add", "physics", str(corpus), "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["added"] == 2
    found = runner.invoke(app, ["kb", "search", "physics", "helium nucleus", "-k", "2", "--json"])
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert {Path(r["path"]).name for r in results} == {"a.md", "b.txt"}
    lexical = runner.invoke(app, ["kb", "search", "physics", "helium", "--mode", "lexical", "--json"])
    assert json.loads(lexical.stdout)["results"][0]["path"].endswith("a.md")


def test_a_server_in_front_of_servers(settings, endpoints, tiny_encoder):
    """`embedhub serve --model remote:...`: the front server's queue, cache and routes over it."""
    encoder = load_encoder(remote_reference(*endpoints), remote_settings(settings))
    # the front server's queue keeps as many batches in flight as the endpoints take together
    assert encoder.concurrent_batches == 2 * remote_settings(settings).remote_concurrency
    app = create_app(remote_settings(settings), encoders={"front": encoder})
    with live_server(app, "/ready") as front:
        assert app.state.hub.get("front").queue.workers == encoder.concurrent_batches
        card = httpx.get(front + "/v1/models").json()["data"][0]
        assert card["backend"] == "remote" and card["id"] == MODEL
        answer = httpx.post(
            front + "/v1/embeddings",
            json={"model": "front", "input": [QUERY], "input_type": "query", "dimensions": 64},
        ).json()
    encoder.close()
    local = tiny_encoder.encode([QUERY], kind="query", dimensions=64)
    np.testing.assert_allclose(np.array([answer["data"][0]["embedding"]]), local.vectors, atol=TOLERANCE)
    assert answer["usage"]["prompt_tokens"] == local.prompt_tokens


def test_eval_embeds_through_the_remote_backend(settings, endpoints, tiny_encoder, tmp_path):
    """Eval's own path (tokenise, its cache, embed_token_ids, MRL after the cache) over the endpoints."""
    from embedhub.eval.core import EvalContext
    from embedhub.models.spec import Task

    encoder = load_encoder(remote_reference(*endpoints), remote_settings(settings))
    try:
        remote, local = EvalContext(encoder, tmp_path), EvalContext(tiny_encoder, tmp_path)
        for options in ({"kind": "query", "task": Task.STS}, {"kind": "document", "dimensions": 32}):
            np.testing.assert_allclose(
                remote.embed(DOCUMENTS, **options), local.embed(DOCUMENTS, **options), atol=TOLERANCE
            )
        assert encoder.stats.requests >= 2  # both calls reached the endpoints
    finally:
        encoder.close()


@pytest.fixture(scope="module")
def e5_endpoint(settings):
    """A live embedhub serving the offline default model, whose templates ("query: ",
    "passage: ") embedhub applies itself."""
    e5 = load_encoder("multilingual-e5-small-q4", settings.model_copy(update={"backend": "torch"}))
    app = create_app(settings, encoders={"multilingual-e5-small-q4": e5})
    with live_server(app, "/ready") as url:
        yield url, e5


def test_a_templated_model_through_another_embedhub_equals_the_local_model(settings, e5_endpoint):
    """Two embedhub machines with the default model (one serving, one ingesting) was refused: the
    endpoint would add "passage: " to text already formatted. Now it gets the text untemplated
    with its input type, and the vectors are the local model's, queries and documents mixed."""
    url, local = e5_endpoint
    reference = remote_reference(url, name="multilingual-e5-small-q4")
    encoder = load_encoder(reference, remote_settings(settings))
    try:
        for kind in ("document", "query"):
            remote = encoder.encode(DOCUMENTS, kind=kind)
            expected = local.encode(DOCUMENTS, kind=kind)
            cosines = np.sum(remote.vectors * expected.vectors, axis=1)
            assert cosines.min() > 0.9999, (kind, cosines)
            assert remote.token_counts == expected.token_counts
        query, document = encoder.encode([QUERY], kind="query"), encoder.encode([QUERY])
        assert float(query.vectors[0] @ document.vectors[0]) < 0.9999  # each kept its own template
        # one batch holding queries and documents (the server's queue mixes them): one request per type
        tokens = encoder.tokenize([QUERY], kind="query") + encoder.tokenize(DOCUMENTS[:2], kind="document")
        mixed = encoder.embed_token_ids(tokens)
        alone = np.vstack([local.encode([QUERY], kind="query").vectors, local.encode(DOCUMENTS[:2]).vectors])
        mixed = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
        assert np.sum(mixed * alone, axis=1).min() > 0.9999
    finally:
        encoder.close()


def test_templates_that_cannot_be_told_apart_are_refused_on_an_embedhub_endpoint(settings):
    from embedhub.models.remote import TemplateSplitter
    from embedhub.models.spec import ModelSpec

    one_sided = ModelSpec(name="x", dimensions=4, max_tokens=16, pooling="mean", query_template="q: {text}")
    with pytest.raises(ModelLoadError, match="cannot be told apart"):
        TemplateSplitter(one_sided)
    templates = {"query_template": "query: {text}", "document_template": "passage: {text}"}
    e5_like = ModelSpec(name="y", dimensions=4, max_tokens=16, pooling="mean", **templates)
    splitter = TemplateSplitter(e5_like)
    assert splitter.split("query: passage: x")[0] == "passage: x"
    assert splitter.split("passage: query: x") == ("query: x", InputKind.DOCUMENT)
    assert splitter.split("passage:") == ("", InputKind.DOCUMENT)
