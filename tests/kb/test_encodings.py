"""Text files in legacy encodings are read (and their encoding recorded); binary is still refused."""

from __future__ import annotations

import random
import sqlite3

import pytest

from embedhub.kb.ingest import Ingestor
from embedhub.kb.loaders import LoaderError, load_file
from embedhub.kb.manifest import Manifest

CHINESE = "知识库的文本文件，使用中文编码保存。这是第二句话，说明检索系统可以读取它。\n\n第二段：向量检索。"
WESTERN = "“Smart quotes” cost 5 € — a naïve café owner’s résumé.\n\nSecond paragraph – done."
LATIN1 = "Größe der Straße: élève, garçon, señor niño.\n\nÇa va très bien, merci."

CASES = [
    ("gbk.txt", CHINESE.encode("gbk"), CHINESE, "gb18030"),
    ("cp1252.txt", WESTERN.encode("cp1252"), WESTERN, "cp1252"),
    # Latin-1 is read as windows-1252, its superset for every printable character (as browsers do)
    ("latin1.txt", LATIN1.encode("latin-1"), LATIN1, "cp1252"),
    ("utf16.txt", CHINESE.encode("utf-16"), CHINESE, "utf-16"),
    ("utf8.md", ("# Titel\n\n" + LATIN1).encode(), "Titel\n\n" + LATIN1, "utf-8"),
    # a coding declaration is honoured
    ("code.py", "# -*- coding: gbk -*-\nprint('中文注释')\n".encode("gbk"), "print('中文注释')", "gbk"),
]


@pytest.mark.parametrize(("name", "data", "text", "encoding"), CASES)
def test_legacy_encodings_are_read(tmp_path, name, data, text, encoding):
    path = tmp_path / name
    path.write_bytes(data)
    document = load_file(path)
    assert text in document.text
    if name.endswith((".txt", ".py")):
        assert document.encoding == encoding


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # an image is a document of its own now (OCR): named .txt, it is said to be one
        (_png(), "named as text but the content looks like image"),
        (random.Random(0).randbytes(4096), "binary data"),
        (bytes(range(1, 256)) * 8, "binary data"),
    ],
    ids=["png", "random", "all-bytes-no-nul"],
)
def test_real_binary_is_refused(tmp_path, data, reason):
    path = tmp_path / "fake.txt"
    path.write_bytes(data)
    with pytest.raises(LoaderError, match=reason):
        load_file(path)


def test_encoding_is_recorded_in_the_manifest(collection, tiny_encoder, tmp_path):
    folder = tmp_path / "legacy"
    folder.mkdir()
    for name, data, _, _ in CASES[:4]:
        (folder / name).write_bytes(data)
    report = Ingestor(collection, tiny_encoder).ingest([folder]).summary()
    assert report["failed"] == 0 and report["added"] == 4
    encodings = {r.path.rsplit("/", 1)[-1]: r.encoding for r in collection.manifest.documents()}
    assert encodings == {"gbk.txt": "gb18030", "cp1252.txt": "cp1252", "latin1.txt": "cp1252",
                         "utf16.txt": "utf-16"}  # fmt: skip


def test_old_manifest_gains_the_encoding_column(tmp_path):
    path = tmp_path / "manifest.sqlite"
    with sqlite3.connect(str(path)) as db:  # the schema before the encoding column existed
        db.execute(
            "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, file_type TEXT, "
            "file_hash TEXT, size INTEGER, generation INTEGER, chunks INTEGER DEFAULT 0, tokens INTEGER "
            "DEFAULT 0, pages INTEGER, title TEXT, status TEXT NOT NULL, error TEXT, updated_at REAL)"
        )
        db.execute("INSERT INTO documents VALUES ('d1', '/a.txt', 'text', 'h', 3, 1, 1, 2, NULL, NULL, "
                   "'done', NULL, 0)")  # fmt: skip
    manifest = Manifest(path)
    record = manifest.get("d1")
    assert record is not None and record.path == "/a.txt" and record.encoding is None
    manifest.commit(2, [{"doc_id": "d2", "path": "/b.txt", "file_type": "text", "file_hash": "x",
                         "size": 1, "chunks": 1, "tokens": 1, "encoding": "gb18030"}])  # fmt: skip
    assert manifest.get("d2").encoding == "gb18030" and manifest.get("d2").status == "done"
    manifest.close()
