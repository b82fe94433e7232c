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
