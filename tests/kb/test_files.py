"""Finding files and the documents under a path (kb/files.py), and the ingest's ordered pipeline."""

from __future__ import annotations

import threading

import pytest

from embedhub.kb.files import gather_files, is_under, under_paths
from embedhub.kb.ingest import DocumentWriter, Ingestor, Pipeline


def test_gather_files_skips_hidden_entries_and_lists_unsupported_ones(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# A")
    (tmp_path / "notes" / "b.txt").write_text("b")
    (tmp_path / "notes" / "image.xyz").write_bytes(b"\x00")
    (tmp_path / "notes" / ".hidden").mkdir()
    (tmp_path / "notes" / ".hidden" / "c.md").write_text("c")
    files, unsupported = gather_files([tmp_path / "notes"])
    assert [path.name for path in files] == ["a.md", "b.txt"]
    assert [path.name for path in unsupported] == ["image.xyz"]
    assert [path.name for path in gather_files([tmp_path / "notes"], "*.md")[0]] == ["a.md"]


def test_a_document_is_under_a_folder_only_at_a_path_boundary(tmp_path):
    assert is_under("/data/notes/a.md", "/data/notes") and is_under("/data/notes/a.md", "/data/notes/")
    assert is_under("/data/notes/a.md", "/data/notes/a.md")
    assert not is_under("/data/notes-old/a.md", "/data/notes")
    records = [{"path": str(tmp_path / "x" / "a.md")}, {"path": str(tmp_path / "xy" / "b.md")}]
    assert under_paths(records, [tmp_path / "x"], lambda record: record["path"]) == records[:1]


def test_the_pipeline_runs_in_order_and_stops_after_a_failure():
    ran = []
    immediate = Pipeline()
    assert immediate.after(ran.append, "now") is None and ran == ["now"]
    pipeline = Pipeline()
    pipeline.open()
    try:
        gate = threading.Event()
        pipeline.after(lambda: gate.wait(5) and ran.append("first"))
        pipeline.after(ran.append, "second")
        gate.set()
        pipeline.wait()
        assert ran == ["now", "first", "second"]

        def broken():
            raise RuntimeError("the store went away")

        pipeline.after(broken)
        pipeline.after(ran.append, "skipped")
        with pytest.raises(RuntimeError, match="went away"):
            pipeline.wait()
        pipeline.wait()  # raised once
        assert ran[-1] == "second"
    finally:
        pipeline.close()


def test_the_ingestor_writes_through_a_writer_instead_of_being_one(collection, tiny_encoder):
    ingestor = Ingestor(collection, tiny_encoder)
    assert not isinstance(ingestor, DocumentWriter) and isinstance(ingestor.writer, DocumentWriter)
    assert ingestor.count_tokens(["one two"]) == [len(tiny_encoder.content_ids(["one two"])[0])]
