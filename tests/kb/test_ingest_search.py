"""Incremental ingestion, isolation of broken files, model binding, search and citations."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from embedhub.kb.chunking import ChunkingOptions, chunk_document
from embedhub.kb.collection import CollectionExistsError, CollectionNotFoundError, ModelMismatchError
from embedhub.kb.ingest import Ingestor, remove_paths
from embedhub.kb.loaders import load_file
from embedhub.kb.search import Searcher, one_per_document
from embedhub.kb.snippets import highlight
from embedhub.kb.store import ChunkRow, Hit, SearchFilter
from tests.kb.conftest import make_docx, make_pdf

ENGLISH = "The mitochondria is the powerhouse of the cell. Cells need energy to live and grow."
CHINESE = "中华人民共和国公民在法律面前一律平等。国家尊重和保障人权。"


def write_corpus(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "biology.txt").write_text(ENGLISH)
    (folder / "law.md").write_text(f"# 宪法\n\n## 第二章 公民的基本权利\n\n{CHINESE}\n")
    make_pdf(folder / "paper.pdf", ["Quantum computing page one.", "Entanglement on page two."])
    make_docx(folder / "report.docx")
    return folder


def one_line_notes(folder, count: int, topics: int | None = None):
    """`count` one-chunk text files noteNNN.txt in a new `folder` (each its own document)."""
    folder.mkdir()
    for index in range(count):
        about = f" about topic {index % topics}" if topics else ""
        (folder / f"note{index:03d}.txt").write_text(f"note number {index}{about}")
    return folder


def test_ingest_is_incremental_and_isolates_failures(collection, tiny_encoder, tmp_path):
    folder = write_corpus(tmp_path / "corpus")
    (folder / "empty.txt").write_text("")
    (folder / "fake.pdf").write_text("not a pdf")
    make_pdf(folder / "locked.pdf", ["secret"], encrypt="pw")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "skip.txt").write_text("hidden")
    ingestor = Ingestor(collection, tiny_encoder)

    first = ingestor.ingest([folder]).summary()
    assert (first["added"], first["failed"], first["unsupported"]) == (4, 3, 1)
    reasons = {os.path.basename(f["path"]): f["error"] for f in first["failures"]}
    assert "empty" in reasons["empty.txt"] and "encrypted" in reasons["locked.pdf"]
    assert "looks like text" in reasons["fake.pdf"]
    assert first["embedded_chunks"] > 0
    stored = collection.store.count()
    assert stored == first["chunks"]

    second = ingestor.ingest([folder]).summary()
    assert second["skipped"] == 4 and second["added"] == second["updated"] == 0
    assert second["embedded_chunks"] == 0 and collection.store.count() == stored

    (folder / "biology.txt").write_text(ENGLISH + " Ribosomes make proteins.")
    (folder / "copy.txt").write_text(ENGLISH)  # an identical chunk: embedded once, from the cache
    third = ingestor.ingest([folder]).summary()
    assert third["updated"] == 1 and third["added"] == 1 and third["cached_chunks"] >= 1
    texts = [hit.text for hit in Searcher(collection, tiny_encoder).search("Ribosomes", k=10, mode="lexical")]
    assert any("Ribosomes" in text for text in texts)
    biology_rows = collection.store.rows_of(next(r.doc_id for r in collection.manifest.documents()
                                                 if r.path.endswith("biology.txt")))  # fmt: skip
    assert len({row.generation for row in biology_rows}) == 1, "old chunks of a changed file must be gone"

    (folder / "copy.txt").unlink()
    fourth = ingestor.ingest([folder], sync=True).summary()
    assert fourth["removed"] == 1
    assert not any(r.path.endswith("copy.txt") for r in collection.manifest.documents())


def test_a_model_with_concurrent_batches_gets_that_many_per_embedding_call(collection, tiny_encoder, tmp_path,
                                                                           monkeypatch):  # fmt: skip
    """A remote encoder's endpoints take several requests at once: ingestion must hand it enough
    chunks per call to fill them, not 32 at a time (one request in flight)."""
    import embedhub.kb.ingest as ingest_module

    calls = []
    embed = ingest_module.embed_chunks

    def counting(encoder, chunks, *args):
        calls.append(len(chunks))
        return embed(encoder, chunks, *args)

    monkeypatch.setattr(ingest_module, "embed_chunks", counting)
    monkeypatch.setattr(tiny_encoder, "concurrent_batches", 3, raising=False)
    folder = one_line_notes(tmp_path / "many", 200, topics=7)
    report = Ingestor(collection, tiny_encoder).ingest([folder])
    assert report.count("added") == 200 and collection.store.count() == 200
    assert max(calls) == 3 * ingest_module.EMBED_CHUNKS and sum(calls) == 200


def test_files_are_read_while_the_previous_batch_is_embedded(collection, tiny_encoder, tmp_path, monkeypatch):
    """Ingestion pipelines: while one batch is being embedded (a remote endpoint's round trip),
    the next file is already parsed. The first embedding call waits until the ingest reports
    parsing a later file; without the pipeline that never happens while it waits."""
    import threading

    import embedhub.kb.ingest as ingest_module
    from embedhub.kb.ingest import Progress

    monkeypatch.setattr(ingest_module, "BATCH_CHUNKS", 4)
    later_file_parsed, overlapped = threading.Event(), []
    embed = ingest_module.embed_chunks

    def slow_endpoint(encoder, chunks, *args):
        if not overlapped:
            overlapped.append(later_file_parsed.wait(timeout=20))
        return embed(encoder, chunks, *args)

    class Watch(Progress):
        def stage(self, path, stage):
            if stage == "parsing" and path.name >= "note006.txt":
                later_file_parsed.set()

    monkeypatch.setattr(ingest_module, "embed_chunks", slow_endpoint)
    folder = one_line_notes(tmp_path / "notes", 12, topics=5)
    report = Ingestor(collection, tiny_encoder, Watch()).ingest([folder])
    assert overlapped == [True], "the next files were not read while a batch was being embedded"
    assert report.count("added") == 12 and collection.store.count() == 12
    hits = Searcher(collection, tiny_encoder).search("note number 7", k=12, mode="lexical")
    assert {hit.path.rsplit("/", 1)[-1] for hit in hits} >= {"note007.txt"}


def test_an_encoder_that_runs_batches_at_once_gets_the_next_batch_before_the_last_is_back(
    collection, tiny_encoder, tmp_path, monkeypatch
):
    """A remote encoder's endpoints idle between batches unless the next batch's requests are
    queued while one batch's answers are parsed and stored: with `concurrent_batches` > 1 two
    batches are embedded at once. The first call waits until a second one has started. Every
    document still ends up stored once, under its own generation."""
    import threading

    import embedhub.kb.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "BATCH_CHUNKS", 4)
    monkeypatch.setattr(tiny_encoder, "concurrent_batches", 2, raising=False)
    second_started, overlapped, calls = threading.Event(), [], []
    embed = ingest_module.embed_chunks

    def endpoint(encoder, chunks, *args):
        calls.append(len(chunks))
        if len(calls) == 1:
            overlapped.append(second_started.wait(timeout=20))
        else:
            second_started.set()
        return embed(encoder, chunks, *args)

    monkeypatch.setattr(ingest_module, "embed_chunks", endpoint)
    folder = one_line_notes(tmp_path / "notes", 40, topics=5)
    report = Ingestor(collection, tiny_encoder).ingest([folder])
    assert overlapped == [True], "the second batch was not embedded while the first was"
    assert report.count("added") == 40 and collection.store.count() == 40 and sum(calls) == 40
    committed = collection.manifest.committed_generations()
    assert len(committed) == 40
    for record in collection.manifest.documents():
        rows = collection.store.rows_of(record.doc_id)
        assert [row.generation for row in rows] == [committed[record.doc_id]]


def test_a_model_failure_in_the_pipeline_keeps_committed_documents(collection, tiny_encoder, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    """The batch embedded in the background fails: the run raises that error, the documents
    committed before it stay, and nothing of the open generation is left behind."""
    import embedhub.kb.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "BATCH_CHUNKS", 2)
    monkeypatch.setattr(ingest_module, "GROUP_DOCUMENTS", 1)
    embed, calls = ingest_module.embed_chunks, []

    def failing_on_the_third(encoder, chunks, *args):
        calls.append(len(chunks))
        if len(calls) == 3:
            raise RuntimeError("the endpoint went away")
        return embed(encoder, chunks, *args)

    monkeypatch.setattr(ingest_module, "embed_chunks", failing_on_the_third)
    folder = one_line_notes(tmp_path / "notes", 8)
    with pytest.raises(RuntimeError, match="went away"):
        Ingestor(collection, tiny_encoder).ingest([folder])
    committed = collection.manifest.committed_generations()
    rows = collection.store.count()
    assert 0 < len(committed) < 8
    assert rows == sum(record.chunks for record in collection.manifest.documents() if record.generation)
    monkeypatch.setattr(ingest_module, "embed_chunks", embed)
    assert Ingestor(collection, tiny_encoder).ingest([folder]).count("added") == 8 - len(committed)
    assert collection.store.count() == 8


def test_hybrid_search_runs_its_lexical_query_beside_the_dense_one(collection, tiny_encoder, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    """Hybrid latency is the longer of the two searches, not their sum: the BM25 query waits for
    the dense search to have started and still answers; the results equal a run one after the
    other, and a failing dense search raises its own error."""
    import threading

    (tmp_path / "a.md").write_text(
        "# Cache\n\nThe cache is keyed by token ids.\n\n# Other\n\nUnrelated words."
    )
    Ingestor(collection, tiny_encoder).ingest([tmp_path / "a.md"])
    searcher = Searcher(collection, tiny_encoder)
    before = [(r.chunk_id, round(r.score, 6)) for r in searcher.search("cache token ids", k=5)]
    store, dense_started, overlapped = collection.store, threading.Event(), []
    dense, lexical = store.dense_search, store.lexical_search

    def dense_search(*args, **kwargs):
        dense_started.set()
        return dense(*args, **kwargs)

    def lexical_search(*args, **kwargs):
        overlapped.append(dense_started.wait(timeout=20))
        return lexical(*args, **kwargs)

    monkeypatch.setattr(store, "dense_search", dense_search)
    monkeypatch.setattr(store, "lexical_search", lexical_search)
    after = [(r.chunk_id, round(r.score, 6)) for r in searcher.search("cache token ids", k=5)]
    assert overlapped == [True] and after == before

    def broken(*args, **kwargs):
        raise RuntimeError("the vector index is unreadable")

    monkeypatch.setattr(store, "dense_search", broken)
    with pytest.raises(RuntimeError, match="unreadable"):
        searcher.search("cache token ids", k=5)


def test_model_mismatch_is_refused(collection, minilm_encoder):
    with pytest.raises(ModelMismatchError, match="holds vectors of model random-qwen3-tiny"):
        Ingestor(collection, minilm_encoder)
    with pytest.raises(ModelMismatchError):
        Searcher(collection, minilm_encoder)


def test_collection_lifecycle_errors(knowledge_base, collection, tiny_encoder):
    with pytest.raises(CollectionExistsError):
        knowledge_base.create("docs", tiny_encoder, model_reference="x")
    with pytest.raises(CollectionNotFoundError, match="collections: docs"):
        knowledge_base.get("other")
    with pytest.raises(Exception, match="not allowed"):
        knowledge_base.get("../escape")
    created = knowledge_base.create("small", tiny_encoder, model_reference="x", dimensions=32)
    assert created.config.dimensions == 32 and created.config.instruction.startswith("Given a web search")
    knowledge_base.drop("small")
    assert knowledge_base.names() == ["docs"]


def test_search_modes_filters_and_citations(collection, tiny_encoder, tmp_path):
    folder = write_corpus(tmp_path / "corpus")
    Ingestor(collection, tiny_encoder).ingest([folder])
    searcher = Searcher(collection, tiny_encoder)

    chinese = searcher.search("公民的基本权利", k=3, mode="lexical")
    assert chinese and chinese[0].path.endswith("law.md")
    assert chinese[0].heading_path == ["宪法", "第二章 公民的基本权利"]
    assert chinese[0].score > 0.5, "a BM25 score near zero means Chinese tokenisation is broken"
    assert "<mark>公民</mark>" in chinese[0].snippet

    entangled = searcher.search("entanglement", k=5, mode="lexical")
    assert entangled[0].path.endswith("paper.pdf") and (entangled[0].page_start, entangled[0].page_end) == (
        2,
        2,
    )
    assert collection.folder.exists()
    document_text = load_file(folder / "paper.pdf").text
    assert document_text[entangled[0].char_start : entangled[0].char_end] == entangled[0].text

    hybrid = searcher.search("mitochondria energy", k=10, mode="hybrid")
    assert {"dense", "lexical"} <= {r for result in hybrid for r in result.retrievers}
    assert len(searcher.search("mitochondria", k=10, mode="dense")) == min(10, collection.store.count())

    only_pdf = searcher.search("page", k=10, mode="hybrid", where=SearchFilter(file_types=("pdf",)))
    assert only_pdf and all(r.file_type == "pdf" for r in only_pdf)
    page_two = searcher.search("page", k=10, mode="lexical", where=SearchFilter(page_min=2, page_max=2))
    assert page_two and all(r.page_start == 2 for r in page_two)
    markdown = searcher.search("公民", k=10, mode="hybrid", where=SearchFilter(path_glob="*.md"))
    assert markdown and all(r.path.endswith(".md") for r in markdown)

    with pytest.raises(Exception, match="unknown search mode"):
        searcher.search("x", mode="fuzzy")
    with pytest.raises(Exception, match="empty"):
        searcher.search("  ")


def test_remove_paths(collection, tiny_encoder, tmp_path):
    folder = write_corpus(tmp_path / "corpus")
    Ingestor(collection, tiny_encoder).ingest([folder])
    removed = remove_paths(collection, [folder / "law.md"])
    assert len(removed) == 1
    assert not Searcher(collection, tiny_encoder).search("公民", k=5, mode="lexical")


def _hits(scores: dict[str, float], doc_of=lambda identifier: identifier) -> list[Hit]:
    return [
        Hit(ChunkRow(i, doc_of(i), 1, 0, "p", "text", "t", "t", 0, 1, None, None, (), "h"), score)
        for i, score in scores.items()
    ]


def test_one_per_document_keeps_each_documents_best_chunks():
    hits = _hits({"a1": 5, "b1": 4, "a2": 3, "c1": 2, "a3": 1}, doc_of=lambda identifier: identifier[0])
    assert [hit.row.id for hit in one_per_document(hits, 1)] == ["a1", "b1", "c1"]
    assert [hit.row.id for hit in one_per_document(hits, 2)] == ["a1", "b1", "a2", "c1"]


def test_highlight_escapes_html_and_marks_terms():
    snippet = highlight("<b>Gravity</b> pulls. 重力很强。", "gravity 重力")
    assert "&lt;b&gt;<mark>Gravity</mark>&lt;/b&gt;" in snippet and "<mark>重力</mark>" in snippet


def test_chunks_respect_budget_spans_and_overlap(tiny_encoder, tmp_path):
    path = tmp_path / "long.md"
    sentences = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(120))
    path.write_text(f"# Title\n\n## Part\n\n{sentences}\n")
    document = load_file(path)

    def count(texts):
        return [len(ids) for ids in tiny_encoder.content_ids(list(texts))]

    chunks = chunk_document(document, count, ChunkingOptions(max_tokens=60, overlap_tokens=12))
    assert len(chunks) > 5
    for chunk in chunks:
        assert count([chunk.text])[0] <= 60 + 2
        assert document.text[chunk.char_start : chunk.char_end] == chunk.text
    body = [c for c in chunks if c.heading_path == ("Title", "Part")]
    assert any(a.char_end > b.char_start for a, b in itertools.pairwise(body)), "expected overlap"


KILL_SCRIPT = """
import sys
from pathlib import Path
from embedhub.config import Settings
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import Ingestor
from embedhub.models.backends import load_encoder
settings = Settings(home=Path(sys.argv[1]))
encoder = load_encoder(sys.argv[2], settings)
collection = KnowledgeBase(settings).get("docs")
Ingestor(collection, encoder).ingest([Path(sys.argv[3])])
print("finished")
"""


def test_kill_during_ingest_then_rerun_is_complete(knowledge_base, tiny_encoder, tiny_model_dir, tmp_path):
    corpus = tmp_path / "many"
    corpus.mkdir()
    for index in range(160):
        words = " ".join(f"word{(index * 7 + j) % 997}" for j in range(100))
        (corpus / f"file{index:03d}.txt").write_text(f"Document {index}. {words}")
    knowledge_base.create("docs", tiny_encoder, model_reference=str(tiny_model_dir), chunk_tokens=64)
    home = knowledge_base.settings.home
    knowledge_base.close()
    command = [sys.executable, "-c", KILL_SCRIPT, str(home), str(tiny_model_dir), str(corpus)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest = home / "collections" / "docs" / "manifest.sqlite"
    committed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists():
            try:
                with sqlite3.connect(str(manifest)) as db:
                    committed = db.execute("SELECT COUNT(*) FROM documents WHERE status = 'done'").fetchone()[
                        0
                    ]
            except sqlite3.OperationalError:
                pass
        if committed >= 32:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 0 < committed < 160, f"the kill should land mid-ingest (committed {committed})"

    reopened = knowledge_base.get("docs")
    report = Ingestor(reopened, tiny_encoder).ingest([corpus]).summary()
    assert report["failed"] == 0 and report["skipped"] + report["added"] + report["updated"] == 160
    rows = [row for record in reopened.manifest.documents() for row in reopened.store.rows_of(record.doc_id)]
    assert len(rows) == reopened.store.count(), "no orphan rows of uncommitted generations"
    keys = [(row.doc_id, row.chunk_index) for row in rows]
    assert len(keys) == len(set(keys)), "no duplicate chunk"
    expected = sum(record.chunks for record in reopened.manifest.documents())
    assert len(rows) == expected and len(reopened.manifest.documents()) == 160
    # and the result equals a clean ingest of the same folder
    clean = knowledge_base.create("clean", tiny_encoder, model_reference=str(tiny_model_dir), chunk_tokens=64)
    Ingestor(clean, tiny_encoder).ingest([corpus])
    assert clean.store.count() == reopened.store.count()
    vectors = reopened.store.vectors_of([rows[0].id])
    assert np.isfinite(vectors[rows[0].id]).all()


def test_reembed_swaps_model_and_resumes(knowledge_base, collection, tiny_encoder, minilm_encoder, tmp_path):
    from embedhub.kb import reembed as reembed_module

    folder = write_corpus(tmp_path / "corpus")
    Ingestor(collection, tiny_encoder).ingest([folder])
    chunks_before = collection.store.count()
    documents = len(collection.manifest.documents())
    calls = {"n": 0}

    def interrupt(done, total):
        calls["n"] += 1
        if done == 2:
            raise KeyboardInterrupt  # a user stops the first run half-way

    with pytest.raises(KeyboardInterrupt):
        reembed_module.reembed(knowledge_base, "docs", minilm_encoder, model_reference="all-MiniLM-L6-v2",
                               on_document=interrupt)  # fmt: skip
    assert collection.config.model == "random-qwen3-tiny", "the old index stays live until the end"
    assert (collection.folder / reembed_module.MARKER).exists()
    report = reembed_module.reembed(
        knowledge_base, "docs", minilm_encoder, model_reference="all-MiniLM-L6-v2"
    )
    assert report.documents == documents and report.reused == 2
    reopened = knowledge_base.get("docs")
    assert reopened.config.model == "all-MiniLM-L6-v2" and reopened.config.dimensions == 384
    assert reopened.store.count() == chunks_before
    assert not (collection.folder / reembed_module.MARKER).exists()
    results = Searcher(reopened, minilm_encoder).search("mitochondria powerhouse", k=1, mode="dense")
    assert results[0].path.endswith("biology.txt")
    with pytest.raises(ModelMismatchError):
        Searcher(reopened, tiny_encoder)


def test_reranker_hook_reorders(collection, tiny_encoder, tmp_path):
    Ingestor(collection, tiny_encoder).ingest([write_corpus(tmp_path / "corpus")])

    class PreferChinese:
        name = "prefer-chinese"

        def score(self, query, passages):
            return [sum(1 for ch in passage if "\u4e00" <= ch <= "\u9fff") for passage in passages]

    results = Searcher(collection, tiny_encoder, reranker=PreferChinese()).search("energy", k=3, mode="dense")
    assert results[0].path.endswith("law.md") and "rerank:prefer-chinese" in results[0].retrievers
