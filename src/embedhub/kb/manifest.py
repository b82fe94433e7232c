"""The document manifest (SQLite, one transaction per commit group): what each file's committed
version is, which versions are being written, and what failed and why.

Write protocol for a group of documents (generation G):
  1. `begin(G, doc_ids)`  - record G as pending for those documents;
  2. the store adds the chunks of G, in one or several `store.add` calls (a large document is
     embedded and written in batches, so its chunks never have to be in memory at once);
  3. `commit(G, docs)`    - in one transaction: G becomes the committed generation, the pending
     mark is cleared, and a cleanup entry asks for older generations to be removed;
  4. the store deletes older generations, then `cleanup_done`.
A crash anywhere leaves either the old or the new version committed, never half of one: on open,
`recover` lists pending generations (whose rows are deleted) and unfinished cleanups (redone).
Search also drops any row whose generation is not the committed one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    file_type TEXT,
    file_hash TEXT,
    size INTEGER,
    generation INTEGER,
    chunks INTEGER DEFAULT 0,
    tokens INTEGER DEFAULT 0,
    pages INTEGER,
    title TEXT,
    status TEXT NOT NULL,
    error TEXT,
    updated_at REAL,
    encoding TEXT,
    chunker_version INTEGER,
    ocr_engine TEXT,
    ocr_pages TEXT,
    warning TEXT
);
CREATE TABLE IF NOT EXISTS pending (doc_id TEXT, generation INTEGER, PRIMARY KEY (doc_id, generation));
CREATE TABLE IF NOT EXISTS cleanup (doc_id TEXT PRIMARY KEY, keep_generation INTEGER);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);
CREATE INDEX IF NOT EXISTS documents_path ON documents (path);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    stage TEXT NOT NULL,
    at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class FailureRecord:
    """A file that failed or was skipped, kept (one per path, the latest reason) until dismissed
    or until the file is ingested after all: what the web UI's Failures list shows (through
    GET /v1/collections/NAME/failures), through reloads and restarts. Uploads refused before
    they reach the ingest (empty, binary, an unsupported type, a name conflict) are recorded here
    too, under `stage` "upload"."""

    path: str
    name: str
    #: failed (could not be read or parsed), unsupported (no loader), skipped (not uploaded:
    #: a conflict the request said to reject)
    status: str
    reason: str
    #: upload (refused before it was stored) or ingest
    stage: str
    at: float

    @property
    def id(self) -> str:
        """Stable per path (the API dismisses one by it; paths hold slashes)."""
        return hashlib.sha256(self.path.encode()).hexdigest()[:24]

    def to_dict(self) -> dict:
        return {"id": self.id, **asdict(self)}


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    file_type: str | None
    file_hash: str | None
    size: int | None
    generation: int | None
    chunks: int
    tokens: int
    pages: int | None
    title: str | None
    status: str
    error: str | None
    updated_at: float | None
    encoding: str | None = None
    #: the chunker (`kb.chunking.CHUNKER_VERSION`) the chunks were made by; None: before versions
    chunker_version: int | None = None
    #: the OCR engine that read some of the pages, and which pages (1-based; [] when none)
    ocr_engine: str | None = None
    ocr_pages: list[int] = field(default_factory=list)
    #: what the ingest could not do for this document (pages needing OCR, limits hit)
    warning: str | None = None


def _record(row: tuple) -> DocumentRecord:
    *first, ocr_engine, ocr_pages, warning = row
    return DocumentRecord(*first, ocr_engine, json.loads(ocr_pages) if ocr_pages else [], warning)


_COLUMNS = ", ".join(DocumentRecord.__dataclass_fields__)  # named: a migrated table orders them differently


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a manifest written by an older version up to this schema (additive only)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(documents)")}
        if "encoding" not in columns:  # added with legacy-encoding support; NULL = not recorded
            self.db.execute("ALTER TABLE documents ADD COLUMN encoding TEXT")
        if "chunker_version" not in columns:  # NULL: chunked before the chunker had versions (1)
            self.db.execute("ALTER TABLE documents ADD COLUMN chunker_version INTEGER")
        for column in ("ocr_engine", "ocr_pages", "warning"):  # added with OCR; NULL = none
            if column not in columns:
                self.db.execute(f"ALTER TABLE documents ADD COLUMN {column} TEXT")

    def close(self) -> None:
        self.db.close()

    def next_generation(self) -> int:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT value FROM counters WHERE name = 'generation'").fetchone()
            value = (row[0] if row else 0) + 1
            self.db.execute("INSERT OR REPLACE INTO counters VALUES ('generation', ?)", (value,))
            self.db.execute("COMMIT")
            return value

    def begin(self, generation: int, doc_ids: Sequence[str]) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR IGNORE INTO pending VALUES (?, ?)", [(d, generation) for d in doc_ids]
            )
            self.db.execute("COMMIT")

    def commit(self, generation: int, documents: Iterable[dict]) -> None:
        """Make `generation` the committed version of each document (one transaction)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            for doc in documents:
                self.db.execute(
                    "INSERT OR REPLACE INTO documents (doc_id, path, file_type, file_hash, size, generation, "
                    "chunks, tokens, pages, title, status, error, updated_at, encoding, chunker_version, "
                    "ocr_engine, ocr_pages, warning) VALUES (?,?,?,?,?,?,?,?,?,?,'done',NULL,?,?,?,?,?,?)",
                    (
                        doc["doc_id"],
                        doc["path"],
                        doc["file_type"],
                        doc["file_hash"],
                        doc["size"],
                        generation,
                        doc["chunks"],
                        doc["tokens"],
                        doc.get("pages"),
                        doc.get("title"),
                        time.time(),
                        doc.get("encoding"),
                        doc.get("chunker_version"),
                        doc.get("ocr_engine"),
                        json.dumps(doc["ocr_pages"]) if doc.get("ocr_pages") else None,
                        doc.get("warning"),
                    ),
                )
                self.db.execute(
                    "DELETE FROM pending WHERE doc_id = ? AND generation = ?", (doc["doc_id"], generation)
                )
                self.db.execute("DELETE FROM failures WHERE path = ?", (doc["path"],))
                self.db.execute("INSERT OR REPLACE INTO cleanup VALUES (?, ?)", (doc["doc_id"], generation))
            self.db.execute("COMMIT")

    def record_failure(self, doc_id: str, path: str, file_hash: str | None, error: str) -> None:
        """A file that failed keeps its previous good version (if any) and gets the reason."""
        with self._lock:
            existing = self.get(doc_id)
            if existing and existing.generation is not None:
                self.db.execute(
                    "UPDATE documents SET status = 'failed', error = ?, updated_at = ? WHERE doc_id = ?",
                    (error, time.time(), doc_id),
                )
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO documents (doc_id, path, file_hash, status, error, updated_at) "
                    "VALUES (?, ?, ?, 'failed', ?, ?)",
                    (doc_id, path, file_hash, error, time.time()),
                )

    def record_problem(self, path: str, name: str, status: str, reason: str, stage: str) -> None:
        """Keep a failed or skipped file with its reason (replacing an earlier one of that path)."""
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO failures (path, name, status, reason, stage, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (path, name, status, reason, stage, time.time()),
            )

    def failures(self) -> list[FailureRecord]:
        rows = self.db.execute("SELECT path, name, status, reason, stage, at FROM failures ORDER BY at, path")
        return [FailureRecord(*row) for row in rows]

    def dismiss_failures(self, paths: Sequence[str] | None = None) -> int:
        """Forget the failures of these paths (all with None); a failed document that never had a
        committed version goes with its failure (nothing of it is stored). Returns how many."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            if paths is None:
                paths = [row[0] for row in self.db.execute("SELECT path FROM failures")]
            removed = 0
            for path in paths:
                removed += self.db.execute("DELETE FROM failures WHERE path = ?", (path,)).rowcount
                self.db.execute(
                    "DELETE FROM documents WHERE path = ? AND status = 'failed' AND generation IS NULL",
                    (path,),
                )
            self.db.execute("COMMIT")
            return removed

    def cleanup_done(self, doc_ids: Sequence[str]) -> None:
        with self._lock:
            self.db.executemany("DELETE FROM cleanup WHERE doc_id = ?", [(d,) for d in doc_ids])

    def pending(self) -> list[tuple[str, int]]:
        return list(self.db.execute("SELECT doc_id, generation FROM pending"))

    def clear_pending(self, items: Sequence[tuple[str, int]]) -> None:
        with self._lock:
            self.db.executemany("DELETE FROM pending WHERE doc_id = ? AND generation = ?", items)

    def cleanups(self) -> list[tuple[str, int]]:
        return list(self.db.execute("SELECT doc_id, keep_generation FROM cleanup"))

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Forget documents; a cleanup entry keeping no generation removes every stored chunk."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM documents WHERE doc_id = ?", [(d,) for d in doc_ids])
            self.db.executemany("INSERT OR REPLACE INTO cleanup VALUES (?, -1)", [(d,) for d in doc_ids])
            self.db.execute("COMMIT")

    def get(self, doc_id: str) -> DocumentRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return _record(row) if row else None

    def documents(self) -> list[DocumentRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM documents ORDER BY path")
        return [_record(row) for row in rows]

    def committed_generations(self, doc_ids: Iterable[str] | None = None) -> dict[str, int]:
        """doc_id -> committed generation, of all documents or only of `doc_ids` (what a search
        checks its hits against: one indexed lookup per hit, not a read of the whole table)."""
        committed = "SELECT doc_id, generation FROM documents WHERE generation IS NOT NULL"
        if doc_ids is None:
            return dict(self.db.execute(committed))
        wanted = json.dumps(sorted(set(doc_ids)))
        return dict(self.db.execute(committed + " AND doc_id IN (SELECT value FROM json_each(?))", (wanted,)))

    def chunked_before(self, version: int) -> list[DocumentRecord]:
        """Documents whose committed chunks were made by a chunker older than `version`."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE generation IS NOT NULL "
            "AND COALESCE(chunker_version, 1) < ? ORDER BY path",
            (version,),
        )
        return [DocumentRecord(*row) for row in rows]

    def totals(self) -> dict[str, int]:
        row = self.db.execute(
            "SELECT COUNT(*), SUM(status = 'done'), SUM(status = 'failed'), COALESCE(SUM(chunks), 0), "
            "COALESCE(SUM(tokens), 0) FROM documents"
        ).fetchone()
        return {
            "documents": row[0],
            "done": row[1] or 0,
            "failed": row[2] or 0,
            "chunks": row[3],
            "tokens": row[4],
        }
