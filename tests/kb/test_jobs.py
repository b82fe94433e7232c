"""Ingestion jobs: cancelled while running (rolled back, the previous version stays), stopped by a
shutdown within a few seconds, persisted and resumed after a restart."""

from __future__ import annotations

import time

import numpy as np
import pytest

from embedhub.kb import ingest
from embedhub.kb.ingest import Ingestor
from embedhub.kb.jobs import JobManager
from embedhub.kb.search import Searcher
from embedhub.models.base import Encoder


class SlowEncoder(Encoder):
    """The tiny encoder with a pause before every forward pass (a slow model, deterministically)."""

    def __init__(self, inner: Encoder, pause: float) -> None:
        self.inner, self.pause = inner, pause
        self.spec, self.prefix_ids, self.suffix_ids = inner.spec, inner.prefix_ids, inner.suffix_ids
        self.calls = 0

    @property
    def vocabulary_size(self) -> int:
        return self.inner.vocabulary_size

    def content_ids(self, texts):
        return self.inner.content_ids(texts)

    def token_strings(self, ids):
        return self.inner.token_strings(ids)

    def embed_token_ids(self, batch) -> np.ndarray:
        self.calls += 1
        time.sleep(self.pause)
        return self.inner.embed_token_ids(batch)


def big_text(marker: str, paragraphs: int = 300) -> str:
    return "\n\n".join(f"{marker} paragraph {i} " + " ".join(f"word{(i * 13 + j) % 501}" for j in range(60))
                       for i in range(paragraphs))  # fmt: skip


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def lexical(collection, query: str) -> list[str]:
    return [hit.text for hit in Searcher(collection, None).search(query, k=5, mode="lexical")]


def assert_no_orphan_rows(collection) -> None:
    assert collection.manifest.pending() == []
    assert collection.store.count() == sum(r.chunks for r in collection.manifest.documents())


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(ingest, "BATCH_CHUNKS", 4)


def test_cancel_a_running_ingest_keeps_the_previous_version(
    knowledge_base, collection, tiny_encoder, tmp_path, small_batches
):
    path = tmp_path / "report.txt"
    path.write_text("The previous version talks about aardvarks only.")
    Ingestor(collection, tiny_encoder).ingest([path])
    path.write_text(big_text("zebracorn"))
    slow = SlowEncoder(tiny_encoder, 0.05)
    manager = JobManager(knowledge_base, lambda model: slow)
    try:
        job = manager.submit("docs", path)
        wait_until(lambda: job.status == "embedding" and job.chunks >= 8)
        assert 0 < job.progress < 1, "progress moves during embedding"
        calls = slow.calls
        cancelled = manager.cancel(job.id)
        assert cancelled.cancel_requested
        assert manager.wait_finished([job.id], timeout=10)
        assert job.status == "cancelled"
        assert slow.calls <= calls + 2, "stopped at the next batch"
        assert lexical(collection, "zebracorn") == []
        assert any("aardvarks" in text for text in lexical(collection, "aardvarks"))
        assert collection.manifest.get(ingest.document_id(path)).status == "done"
        assert_no_orphan_rows(collection)
    finally:
        manager.close()


def test_progress_moves_per_batch_and_reaches_one(knowledge_base, collection, tiny_encoder, tmp_path,
                                                  small_batches):  # fmt: skip
    path = tmp_path / "long.txt"
    path.write_text(big_text("quokka", 60))
    manager = JobManager(knowledge_base, lambda model: tiny_encoder)
    seen: list[float] = []
    original = manager._update

    def record(job, **changes):
        original(job, **changes)
        if "progress" in changes:
            seen.append(job.progress)

    manager._update = record
    job = manager.submit("docs", path)
    assert manager.wait_finished([job.id], timeout=60)
    manager.close()
    assert job.status == "done" and job.progress == 1.0
    middle = [value for value in seen if 0 < value < 1]
    assert len(middle) >= 3 and middle == sorted(middle)


def test_shutdown_stops_running_jobs_fast_and_a_restart_resumes_them(
    knowledge_base, collection, tiny_encoder, tmp_path, small_batches
):
    store = tmp_path / "jobs.sqlite"
    running_file, queued_file = tmp_path / "running.txt", tmp_path / "queued.txt"
    running_file.write_text(big_text("platypus"))
    queued_file.write_text("a queued file that disappears before the restart")
    manager = JobManager(knowledge_base, lambda model: SlowEncoder(tiny_encoder, 0.05), store_path=store)
    running = manager.submit("docs", running_file)
    queued = manager.submit("docs", queued_file)
    wait_until(lambda: running.status == "embedding" and running.chunks >= 8)
    started = time.monotonic()
    manager.close()
    assert time.monotonic() - started < 3, "the running job stops at its next batch"
    assert lexical(collection, "platypus") == []
    assert_no_orphan_rows(collection)
    queued_file.unlink()

    restarted = JobManager(knowledge_base, lambda model: tiny_encoder, store_path=store)
    try:
        resumed = restarted.resume()
        assert [job.id for job in resumed] == [running.id]
        again = restarted.get(running.id)
        assert again.resumed == 1
        gone = restarted.get(queued.id)
        assert gone.status == "failed" and "is gone" in gone.error
        assert restarted.wait_finished([running.id], timeout=120)
        assert again.status == "done" and again.attempts == 2
        assert lexical(collection, "platypus")
        assert_no_orphan_rows(collection)
    finally:
        restarted.close()


def test_cancelled_upload_file_is_removed(knowledge_base, collection, tiny_encoder, small_batches):
    uploads = collection.folder / "uploads"
    uploads.mkdir()
    path = uploads / "upload.txt"
    path.write_text(big_text("wombat"))
    manager = JobManager(knowledge_base, lambda model: SlowEncoder(tiny_encoder, 0.05))
    try:
        job = manager.submit("docs", path)
        wait_until(lambda: job.status == "embedding" and job.chunks >= 4)
        manager.cancel(job.id)
        assert manager.wait_finished([job.id], timeout=10) and job.status == "cancelled"
        assert not path.exists()
        assert collection.manifest.get(ingest.document_id(path)) is None
    finally:
        manager.close()


def test_cancel_collection_then_drop(knowledge_base, collection, tiny_encoder, tmp_path, small_batches):
    path = tmp_path / "big.txt"
    path.write_text(big_text("numbat"))
    manager = JobManager(knowledge_base, lambda model: SlowEncoder(tiny_encoder, 0.05))
    try:
        job = manager.submit("docs", path)
        wait_until(lambda: job.status == "embedding")
        manager.cancel_collection("docs", timeout=10)
        assert job.status == "cancelled"
        knowledge_base.drop("docs")
        manager.forget_collection("docs")
        assert manager.list("docs") == []
    finally:
        manager.close()


def test_windowed_chunking_equals_whole_section_packing(tiny_encoder, tmp_path, monkeypatch):
    from embedhub.kb import chunking
    from embedhub.kb.loaders import load_file

    path = tmp_path / "sections.md"
    body = big_text("okapi", 80).replace("paragraph 7 ", "paragraph 7. A sentence. Another one! ")
    path.write_text("# One\n\n" + body + "\n\n## Two\n\n" + body[:3000])
    document = load_file(path)

    def count(texts):
        return [len(ids) for ids in tiny_encoder.content_ids(list(texts))]

    options = chunking.ChunkingOptions(64, 8)
    whole = chunking.chunk_document(document, count, options)
    monkeypatch.setattr(chunking, "WINDOW_CHARS", 700)
    windowed = chunking.chunk_document(document, count, options)
    assert len(whole) > 20 and windowed == whole
    assert all(document.text[c.char_start : c.char_end] == c.text for c in windowed)


def test_a_large_document_is_stored_in_bounded_batches(collection, tiny_encoder, tmp_path, small_batches):
    path = tmp_path / "large.txt"
    path.write_text(big_text("tapir", 200))
    sizes: list[int] = []
    original = collection.store.add

    def add(rows, vectors):
        sizes.append(len(rows))
        return original(rows, vectors)

    collection.store.add = add
    report = Ingestor(collection, tiny_encoder).ingest([path]).summary()
    assert report["added"] == 1 and report["chunks"] == sum(sizes)
    assert len(sizes) > 10 and max(sizes) <= ingest.BATCH_CHUNKS
    assert len({row.generation for row in collection.store.rows_of(ingest.document_id(path))}) == 1


def test_progress_moves_inside_one_store_batch(collection, tiny_encoder, tmp_path, monkeypatch):
    """A slow model embeds a 256-chunk batch for a minute: the bar moves per embedding call within
    it, not once per stored batch (it sat still for the whole first batch before)."""
    monkeypatch.setattr(ingest, "EMBED_CHUNKS", 8)
    path = tmp_path / "long.txt"
    path.write_text(big_text("wombat", 40))
    seen: list[tuple[int, float]] = []

    class Recorder(ingest.Progress):
        def embedded(self, path, chunks, fraction):
            seen.append((chunks, fraction))

    report = ingest.Ingestor(collection, tiny_encoder, Recorder()).ingest([path])
    stored = report.outcomes[-1].chunks
    assert ingest.EMBED_CHUNKS < stored < ingest.BATCH_CHUNKS  # one stored batch
    assert len(seen) >= stored // ingest.EMBED_CHUNKS
    assert seen == sorted(seen) and seen[-1] == (stored, 1.0)


def test_a_cancelled_job_keeps_the_share_it_reached(knowledge_base, collection, tiny_encoder, tmp_path,
                                                    small_batches):  # fmt: skip
    """issue 27: a job cancelled at 0.2% was drawn full; it keeps its true share (and no estimate)."""
    path = tmp_path / "big.txt"
    path.write_text(big_text("platypus"))
    manager = JobManager(knowledge_base, lambda model: SlowEncoder(tiny_encoder, 0.05))
    try:
        job = manager.submit("docs", path)
        wait_until(lambda: job.status == "embedding" and job.chunks >= 8)
        manager.cancel(job.id)
        assert manager.wait_finished([job.id], timeout=10) and job.status == "cancelled"
        assert 0 < job.progress < 0.5, job.progress
        assert job.eta_seconds is None and job.chunks == 0  # its chunks were rolled back
    finally:
        manager.close()


def test_a_large_document_reports_progress_with_rate_and_time_left(knowledge_base, tiny_encoder,
                                                                   tiny_model_dir, tmp_path):  # fmt: skip
    """A 1 MB text (one document, the real batch sizes; 2 MB took 270 s on two shared cores): the
    job moves many times before the document is finished, with increasing chunks, a rate, an
    estimate of the time left and of the document's chunks."""
    knowledge_base.create("big", tiny_encoder, model_reference=str(tiny_model_dir))
    path = tmp_path / "statutes.txt"
    text = big_text("section", 2200)
    while len(text) < 1_000_000:
        text += "\n\n" + text[: 1_000_000 - len(text)]
    path.write_text(text)
    manager = JobManager(knowledge_base, lambda model: tiny_encoder)
    seen: list[dict] = []
    original = manager._update

    def record(job, **changes):
        original(job, **changes)
        if job.status == "embedding" and "progress" in changes:
            seen.append({key: getattr(job, key) for key in ("chunks", "progress", "rate", "eta_seconds")})

    manager._update = record
    try:
        job = manager.submit("big", path)
        assert manager.wait_finished([job.id], timeout=300) and job.status == "done", job.error
    finally:
        manager.close()
    moving = [update for update in seen if 0 < update["progress"] < 1]
    assert len(moving) >= 10, len(moving)
    chunks = [update["chunks"] for update in moving]
    assert chunks == sorted(chunks) and chunks[0] < chunks[-1] < job.chunks
    assert all(update["rate"] and update["rate"] > 0 for update in moving)
    assert all(update["eta_seconds"] is not None and update["eta_seconds"] >= 0 for update in moving)
    assert job.chunks_total == job.chunks and job.eta_seconds == 0
