"""The manifest's answers a search relies on."""

from embedhub.kb.manifest import Manifest


def _document(doc_id: str) -> dict:
    return {"doc_id": doc_id, "path": f"/docs/{doc_id}.md", "file_type": "md", "file_hash": "h",
            "size": 1, "chunks": 1, "tokens": 1}  # fmt: skip


def test_committed_generations_of_some_documents(tmp_path):
    """A search asks about its hits' documents only: the answer holds exactly those that are
    committed, at their committed generation; pending ones and unknown ids are absent."""
    manifest = Manifest(tmp_path / "manifest.sqlite")
    manifest.commit(1, [_document("a"), _document("b"), _document("c")])
    manifest.commit(2, [_document("b")])
    manifest.begin(3, ["d"])  # started, never committed
    assert manifest.committed_generations(["b", "c", "d", "nobody", "b"]) == {"b": 2, "c": 1}
    assert manifest.committed_generations([]) == {}
    assert manifest.committed_generations() == {"a": 1, "b": 2, "c": 1}
    manifest.close()


def test_failures_are_kept_across_a_reopen_until_dismissed_or_ingested(tmp_path):
    """One entry per path (the latest reason), through a reopen; dismissing a never-committed
    failed document forgets its row too; committing the path clears its failure."""
    manifest = Manifest(tmp_path / "manifest.sqlite")
    manifest.record_problem("/up/empty.txt", "empty.txt", "failed", "empty.txt: the file is empty", "upload")
    manifest.record_problem("/docs/a.md", "a.md", "failed", "first reason", "ingest")
    manifest.record_problem("/docs/a.md", "a.md", "failed", "second reason", "ingest")
    manifest.record_problem("/docs/x.xyz", "x.xyz", "unsupported", "no loader", "ingest")
    manifest.record_failure("broken", "/docs/broken.pdf", "h", "not a PDF")
    manifest.record_problem("/docs/broken.pdf", "broken.pdf", "failed", "not a PDF", "ingest")
    manifest.close()
    manifest = Manifest(tmp_path / "manifest.sqlite")  # a restart
    kept = {failure.name: failure for failure in manifest.failures()}
    assert set(kept) == {"empty.txt", "a.md", "x.xyz", "broken.pdf"}
    assert kept["a.md"].reason == "second reason" and kept["empty.txt"].stage == "upload"
    assert kept["a.md"].to_dict()["id"] == kept["a.md"].id != kept["x.xyz"].id
    manifest.commit(1, [_document("a")])  # /docs/a.md ingested after all
    assert "a.md" not in {failure.name for failure in manifest.failures()}
    assert manifest.dismiss_failures(["/docs/broken.pdf"]) == 1
    assert manifest.get("broken") is None  # nothing of it was stored: its failed row goes too
    assert manifest.dismiss_failures() == 2 and manifest.failures() == []
    assert manifest.get("a").status == "done"
    manifest.close()
