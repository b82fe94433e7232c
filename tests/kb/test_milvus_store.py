"""The Milvus store behind the store contract, against a real Milvus Lite process started in a temp
folder (the pymilvus API a Milvus cluster speaks too): the behaviours the LanceDB store is tested
for in test_ingest_search.py, plus what only a server store has (a URI, an owned collection)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedhub.kb.ingest import Ingestor, remove_paths
from embedhub.kb.search import Searcher
from embedhub.kb.store import ChunkRow, SearchFilter, open_store
from tests.kb.test_ingest_search import ENGLISH, write_corpus

pytest.importorskip("milvus_lite", reason="milvus-lite is not installed: pip install 'embedhub[milvus]'")
milvus = pytest.importorskip("embedhub.kb.store.milvus")


def row(index: int, doc: str, generation: int = 1, **fields) -> ChunkRow:
    values = dict(
        id=f"{doc}:{generation}:{index}", doc_id=doc, generation=generation, chunk_index=index,
        path=f"/corpus/{doc}.txt", file_type="txt", text=f"text {index}", terms=f"word{index} common",
        char_start=0, char_end=6, page_start=None, page_end=None, heading_path=("Title", "Part"),
        content_hash="h",
    )  # fmt: skip
    values.update(fields)
    return ChunkRow(**values)


@pytest.fixture
def store(tmp_path):
    opened = open_store("milvus", tmp_path / "docs" / "store", 4)
    yield opened
    opened.close()


def test_store_contract(store, monkeypatch):
    rows = [
        row(0, "a", path="/corpus/my_notes.md", file_type="md", terms="公民 权利 common"),
        row(1, "a", path="/corpus/my_notes.md", file_type="md", page_start=2, page_end=3),
        row(0, "b", path="/corpus/report%.pdf", file_type="pdf", page_start=5, page_end=5),
        row(1, "b", path="/corpus/myXnotes.md", file_type="md"),
    ]
    vectors = np.eye(4, dtype=np.float32)
    store.add(rows, vectors)
    assert store.count() == 4
    assert [r.id for r in store.rows_of("a")] == ["a:1:0", "a:1:1"]
    assert store.rows_of("a")[0] == rows[0], "a row reads back exactly as written (terms decoded)"
    np.testing.assert_array_equal(store.vectors_of(["b:1:0"])["b:1:0"], vectors[2])

    dense = store.dense_search(np.array([1, 1, 0, 0], dtype=np.float32), 4, SearchFilter())
    assert [h.row.id for h in dense[:2]] == ["a:1:0", "a:1:1"]
    assert dense[0].score == pytest.approx(1 / np.sqrt(2), abs=1e-5), "dense score is the cosine"

    lexical = store.lexical_search("公民", 10, SearchFilter())
    assert [h.row.id for h in lexical] == ["a:1:0"] and lexical[0].score > 0
    common = store.lexical_search("common word1", 10, SearchFilter())
    assert common[0].row.id == "a:1:1" and len(common) == 4 and all(h.score > 0 for h in common)

    def ids(where: SearchFilter) -> set[str]:
        found = {h.row.id for h in store.lexical_search("common", 10, where)}
        assert found == {h.row.id for h in store.dense_search(np.ones(4, np.float32), 10, where)}
        return found

    # `_` and `%` are literal in a glob: my_notes.md matches, myXnotes.md does not
    assert ids(SearchFilter(path_glob="my_notes.md")) == {"a:1:0", "a:1:1"}
    assert ids(SearchFilter(path_glob="report%.pdf")) == {"b:1:0"}
    assert ids(SearchFilter(file_types=("pdf", "txt"))) == {"b:1:0"}
    assert ids(SearchFilter(page_min=3)) == {"a:1:1", "b:1:0"}, "chunks without pages never match a range"
    assert ids(SearchFilter(page_max=4)) == {"a:1:1"}
    assert ids(SearchFilter(page_min=4, page_max=6, file_types=("pdf",))) == {"b:1:0"}

    # replacing document a: generation 2 written, then the others deleted
    store.add([row(0, "a", generation=2, terms="fresh")], np.ones((1, 4), np.float32))
    store.delete_documents(["a"], only_generation=3)  # nothing of generation 3: nothing deleted
    assert store.count() == 5
    store.delete_documents(["a"], except_generation=2)
    assert [r.id for r in store.rows_of("a")] == ["a:2:0"]
    assert [h.row.id for h in store.lexical_search("fresh", 5, SearchFilter())] == ["a:2:0"]
    assert not store.lexical_search("公民", 5, SearchFilter())
    store.delete_documents(["b"])
    assert store.count() == 1 and not store.rows_of("b")

    store.add([row(index, "c") for index in range(4)], np.ones((4, 4), np.float32))
    monkeypatch.setattr(milvus, "WRITE_BATCH", 2)  # several batches, written while reading
    assert store.rewrite_terms(lambda text, headings: f"{text} {headings[0]}".lower()) == 5
    assert store.count() == 5
    assert store.rows_of("a")[0].terms == "text 0 title"
    assert [r.terms for r in store.rows_of("c")] == [f"text {index} title" for index in range(4)]
    store.delete_documents(["c"])
    assert [h.row.id for h in store.lexical_search("title", 5, SearchFilter())] == ["a:2:0"]
    assert not store.lexical_search("fresh", 5, SearchFilter())
    assert not store.lexical_search("   ", 5, SearchFilter())


def test_terms_are_stored_whole_whatever_the_characters():
    terms = "公民 c++ don't node.js 3.14 snake_case ünïcode"
    encoded = milvus.encode_terms(terms)
    assert all(token.isalnum() and token.isascii() for token in encoded.split())
    assert milvus.decode_terms(encoded) == terms


def test_milvus_collection_ingests_searches_and_replaces_documents(knowledge_base, tiny_encoder, tmp_path):
    collection = knowledge_base.create("docs", tiny_encoder, model_reference="tiny", store="milvus",
                                       chunk_tokens=64, chunk_overlap=8)  # fmt: skip
    assert (collection.config.store, collection.config.store_uri) == ("milvus", None)
    assert (collection.folder / "store" / milvus.LITE_FILE).exists()
    assert collection.info()["store"] == "milvus"
    folder = write_corpus(tmp_path / "corpus")
    ingestor = Ingestor(collection, tiny_encoder)
    first = ingestor.ingest([folder]).summary()
    assert first["added"] == 4 and collection.store.count() == first["chunks"]
    searcher = Searcher(collection, tiny_encoder)

    chinese = searcher.search("公民的基本权利", k=3, mode="lexical")
    assert chinese and chinese[0].path.endswith("law.md")
    assert chinese[0].heading_path == ["宪法", "第二章 公民的基本权利"]
    assert chinese[0].score > 0.5, "a BM25 score near zero means Chinese tokenisation is broken"
    entangled = searcher.search("entanglement", k=5, mode="lexical")
    assert entangled[0].path.endswith("paper.pdf") and entangled[0].page_start == 2
    hybrid = searcher.search("mitochondria energy", k=10, mode="hybrid")
    assert {"dense", "lexical"} <= {r for result in hybrid for r in result.retrievers}
    assert len(searcher.search("mitochondria", k=10, mode="dense")) == min(10, collection.store.count())
    only_pdf = searcher.search("page", k=10, mode="hybrid", where=SearchFilter(file_types=("pdf",)))
    assert only_pdf and all(r.file_type == "pdf" for r in only_pdf)
    page_two = searcher.search("page", k=10, mode="lexical", where=SearchFilter(page_min=2, page_max=2))
    assert page_two and all(r.page_start == 2 for r in page_two)
    markdown = searcher.search("公民", k=10, mode="hybrid", where=SearchFilter(path_glob="*.md"))
    assert markdown and all(r.path.endswith(".md") for r in markdown)

    # the same chunks in LanceDB score the same: cosine for dense, BM25 for lexical
    lance = knowledge_base.create("lance", tiny_encoder, model_reference="tiny", chunk_tokens=64,
                                  chunk_overlap=8)  # fmt: skip
    Ingestor(lance, tiny_encoder).ingest([folder])
    lance_searcher = Searcher(lance, tiny_encoder)
    for mode in ("dense", "lexical"):
        ours = searcher.search("mitochondria energy cells", k=3, mode=mode)
        theirs = lance_searcher.search("mitochondria energy cells", k=3, mode=mode)
        assert [(h.path, h.char_start) for h in ours] == [(h.path, h.char_start) for h in theirs]
        tolerance = 1e-4 if mode == "dense" else 0.2  # BM25's average length is counted differently
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], rel=tolerance)

    # a changed file replaces its document: one generation left, the new text found, the old not
    (folder / "biology.txt").write_text(ENGLISH.replace("powerhouse", "Ribosomes"))
    assert ingestor.ingest([folder]).summary()["updated"] == 1
    biology = next(r for r in collection.manifest.documents() if r.path.endswith("biology.txt"))
    assert len({row.generation for row in collection.store.rows_of(biology.doc_id)}) == 1
    assert searcher.search("ribosomes", k=5, mode="lexical")[0].path.endswith("biology.txt")
    assert not searcher.search("powerhouse", k=5, mode="lexical")

    assert len(remove_paths(collection, [folder / "law.md"])) == 1
    assert not searcher.search("公民", k=5, mode="lexical")


def test_collection_at_a_uri_owns_its_milvus_collection(settings, tiny_encoder, tmp_path):
    from pymilvus import MilvusClient

    from embedhub.kb.collection import KnowledgeBase

    uri = str(tmp_path / "server.db")  # stands for http://host:19530: the same client API
    knowledge_base = KnowledgeBase(
        settings.model_copy(update={"home": tmp_path / "home", "milvus_token": "root:Milvus"})
    )
    collection = knowledge_base.create("shared.a", tiny_encoder, model_reference="tiny", store="milvus",
                                       store_uri=uri)  # fmt: skip
    name = collection.store.name
    assert name.startswith("embedhub_shared_a__store_")
    assert collection.store_token == "root:Milvus", "the settings' token reaches the store"
    config = json.loads((collection.folder / "collection.json").read_text())
    assert (config["store"], config["store_uri"]) == ("milvus", uri)
    assert "root:Milvus" not in json.dumps(config), "the token is never written to collection.json"
    knowledge_base.close()

    # a second embedhub home pointing at the same URI cannot take the collection over
    (collection.folder / "store" / milvus.OWNER_FILE).unlink()
    with pytest.raises(milvus.MilvusStoreError, match="did not create"):
        open_store("milvus", collection.folder / "store", collection.config.dimensions, uri=uri)
    (collection.folder / "store" / milvus.OWNER_FILE).write_text(json.dumps({"uri": uri, "collection": name}))

    knowledge_base.drop("shared.a")  # drops the Milvus collection too, not only the local folder
    client = MilvusClient(uri)
    try:
        assert not client.has_collection(name)
    finally:
        client.close()


def test_store_choice_is_checked(knowledge_base, tiny_encoder, tmp_path):
    with pytest.raises(Exception, match="unknown store 'qdrant'; choose one of: lancedb, milvus"):
        knowledge_base.create("x", tiny_encoder, model_reference="tiny", store="qdrant")
    with pytest.raises(Exception, match="takes no URI"):
        knowledge_base.create("x", tiny_encoder, model_reference="tiny", store_uri="http://localhost:19530")
    with pytest.raises(milvus.MilvusStoreError, match="cannot open Milvus at"):
        knowledge_base.create("x", tiny_encoder, model_reference="tiny", store="milvus",
                              store_uri=str(tmp_path / "no-such-folder" / "x.db"))  # fmt: skip
    assert knowledge_base.names() == [], "a refused store creates nothing"


def test_kb_create_with_the_milvus_store_from_the_cli(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from embedhub.cli import app

    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    created = runner.invoke(
        app, ["kb", "create", "physics", "--model", str(tiny_model_dir), "--store", "milvus"]
    )
    assert created.exit_code == 0 and "store milvus" in created.output, created.output
    assert runner.invoke(app, ["kb", "add", "physics", str(corpus)]).exit_code == 0
    found = runner.invoke(app, ["kb", "search", "physics", "helium", "--mode", "lexical", "--json"])
    assert json.loads(found.stdout)["results"][0]["path"].endswith("a.md")
    listed = runner.invoke(app, ["kb", "list"])
    assert "1 chunks, 0 failed, store milvus" in listed.stdout
    wrong = runner.invoke(app, ["kb", "create", "other", "--store", "qdrant"])
    assert wrong.exit_code == 2 and "choose one of: lancedb, milvus" in wrong.output
    assert runner.invoke(app, ["kb", "drop", "physics", "--yes"]).exit_code == 0


def test_http_create_collection_chooses_the_store(settings, tiny_encoder, tmp_path):
    import httpx

    from embedhub.server.app import create_app
    from tests.live_server import live_server
    from tests.server.test_kb_api import wait_for_jobs

    app = create_app(settings.model_copy(update={"home": tmp_path / "home"}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as api:
        refused = api.post("/v1/collections", json={"name": "x", "store": "milvus", "store_uri": "/tmp/x.db"})
        assert refused.status_code == 400 and "server address" in refused.text
        assert api.post("/v1/collections", json={"name": "x", "store": "qdrant"}).status_code == 400
        down = api.post(
            "/v1/collections", json={"name": "x", "store": "milvus", "store_uri": "http://127.0.0.1:9"}
        )
        assert down.status_code == 503, "an unreachable Milvus is the store's outage, not the caller's error"
        assert down.json()["error"]["code"] == "store_unavailable" and "127.0.0.1:9" in down.text
        assert api.get("/v1/collections").json()["data"] == [], "a refused store creates nothing"
        created = api.post("/v1/collections", json={"name": "notes", "store": "milvus"})
        assert created.status_code == 201, created.text
        assert (created.json()["store"], created.json()["store_uri"]) == ("milvus", None)
        files = [("files", ("readme.md", b"# Readme\n\nHello markdown world.", "text/markdown"))]
        assert api.post("/v1/collections/notes/files", files=files).status_code == 202
        assert {job["status"] for job in wait_for_jobs(api, "notes", 1)} == {"done"}
        found = api.post("/v1/collections/notes/search", json={"query": "markdown", "mode": "lexical"})
        assert found.json()["results"][0]["path"].endswith("readme.md")
        assert api.delete("/v1/collections/notes").status_code == 200


def test_reembed_moves_a_milvus_collection_and_drops_the_old_one(
    knowledge_base, tiny_encoder, minilm_encoder, tmp_path
):
    from pymilvus import MilvusClient

    from embedhub.kb.reembed import reembed

    uri = str(tmp_path / "server.db")
    collection = knowledge_base.create("docs", tiny_encoder, model_reference="tiny", store="milvus",
                                       store_uri=uri, chunk_tokens=64, chunk_overlap=8)  # fmt: skip
    Ingestor(collection, tiny_encoder).ingest([write_corpus(tmp_path / "corpus")])
    chunks, old_name = collection.store.count(), collection.store.name
    report = reembed(knowledge_base, "docs", minilm_encoder, model_reference="all-MiniLM-L6-v2")
    reopened = knowledge_base.get("docs")
    assert reopened.store.count() == chunks and reopened.store.name != old_name
    assert report.store_folder.replace("-", "_") in reopened.store.name
    dense = Searcher(reopened, minilm_encoder).search("mitochondria powerhouse", k=1, mode="dense")
    assert dense[0].path.endswith("biology.txt")
    knowledge_base.close()
    client = MilvusClient(uri)
    try:
        assert client.list_collections() == [reopened.store.name], "the old Milvus collection is dropped"
    finally:
        client.close()


def test_quotes_backslashes_and_chinese_in_ids_and_paths(store):
    odd = row(0, 'say "hi"', path='/corpus/say "hi" \\ 文件.md', file_type="md")
    store.add([odd, row(0, "plain")], np.ones((2, 4), np.float32))
    for glob in ('*"hi"*', "*\\ 文件.md", "*文件*"):
        where = SearchFilter(path_glob=glob)
        assert [h.row.id for h in store.lexical_search("common", 5, where)] == [odd.id], glob
        assert [h.row.id for h in store.dense_search(np.ones(4, np.float32), 5, where)] == [odd.id], glob
    assert store.rows_of('say "hi"') == [odd]
    store.delete_documents(['say "hi"'])
    assert store.count() == 1
