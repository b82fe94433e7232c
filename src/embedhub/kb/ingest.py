"""Incremental, crash-safe ingestion of files into a collection.

Unchanged files (same content hash) are skipped without loading; changed files replace their old
chunks; with `sync`, files gone from the given folders are removed. Identical chunks are embedded
once (the collection's embedding cache, keyed by the exact model input). One broken file never
stops a folder: its error is recorded with the reason and the rest goes on. Documents are written
in groups, each one store commit plus one manifest transaction (see manifest.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedhub.engine.cache import embed_through_cache
from embedhub.errors import EmbedhubError
from embedhub.kb.chunking import Chunk, chunk_document
from embedhub.kb.collection import Collection
from embedhub.kb.lexical import index_text
from embedhub.kb.loaders import load_file, loader_for
from embedhub.kb.store import ChunkRow
from embedhub.models.base import Encoder, finish

GROUP_DOCUMENTS = 32
GROUP_CHUNKS = 1024


@dataclass
class FileOutcome:
    path: str
    status: str  # added | updated | skipped | failed | removed | unsupported
    chunks: int = 0
    tokens: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    embedded_chunks: int = 0
    cached_chunks: int = 0

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> dict:
        return {
            "added": self.count("added"),
            "updated": self.count("updated"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "removed": self.count("removed"),
            "unsupported": self.count("unsupported"),
            "chunks": sum(o.chunks for o in self.outcomes if o.status in ("added", "updated")),
            "tokens": sum(o.tokens for o in self.outcomes if o.status in ("added", "updated")),
            "embedded_chunks": self.embedded_chunks,
            "cached_chunks": self.cached_chunks,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": o.path, "error": o.error} for o in self.failures],
        }


class Progress:
    """Callbacks for a progress display; the default does nothing."""

    def start(self, files: int) -> None: ...
    def stage(self, path: Path, stage: str) -> None: ...
    def file_done(self, outcome: FileOutcome) -> None: ...


def document_id(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:24]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gather_files(paths: Iterable[Path], glob: str | None = None) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under the given paths; hidden entries are skipped."""
    files: list[Path] = []
    unsupported: list[Path] = []
    for path in paths:
        path = path.expanduser().resolve()
        if not path.exists():
            raise EmbedhubError(f"{path} does not exist")
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for candidate in candidates:
            relative = candidate.relative_to(path) if path.is_dir() else Path(candidate.name)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if glob and not (fnmatch.fnmatch(str(relative), glob) or fnmatch.fnmatch(candidate.name, glob)):
                continue
            if path.is_dir() and loader_for(candidate) is None:
                unsupported.append(candidate)
            else:
                files.append(candidate)
    return files, unsupported


@dataclass
class _Prepared:
    doc_id: str
    path: Path
    file_type: str
    file_hash: str
    size: int
    chunks: list[Chunk]
    pages: int | None
    title: str | None
    status: str


class Ingestor:
    def __init__(self, collection: Collection, encoder: Encoder, progress: Progress | None = None) -> None:
        collection.check_encoder(encoder)
        self.collection = collection
        self.encoder = encoder
        self.progress = progress or Progress()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.encoder.content_ids(list(texts))] if texts else []

    def ingest(self, paths: Sequence[Path], *, glob: str | None = None, sync: bool = False) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files, unsupported = gather_files(paths, glob)
        report.outcomes.extend(FileOutcome(str(p), "unsupported") for p in unsupported)
        self.progress.start(len(files))
        group: list[_Prepared] = []
        for path in files:
            prepared = self._prepare(path, report)
            if prepared is None:
                continue
            group.append(prepared)
            if len(group) >= GROUP_DOCUMENTS or sum(len(p.chunks) for p in group) >= GROUP_CHUNKS:
                self._write(group, report)
                group = []
        if group:
            self._write(group, report)
        if sync:
            self._sync(paths, {str(p) for p in files}, report)
        report.seconds = time.perf_counter() - started
        return report

    def ingest_bytes(self, path: Path, data: bytes) -> FileOutcome:
        """One uploaded file whose bytes are already in memory (the HTTP API's path)."""
        report = IngestReport()
        prepared = self._prepare(path, report, data)
        if prepared is not None:
            self._write([prepared], report)
        return report.outcomes[-1]

    def _prepare(self, path: Path, report: IngestReport, data: bytes | None = None) -> _Prepared | None:
        doc_id = document_id(path)
        try:
            data = path.read_bytes() if data is None else data
        except OSError as error:
            self._fail(report, doc_id, path, None, f"cannot read the file: {error.strerror or error}")
            return None
        digest = file_hash(data)
        existing = self.collection.manifest.get(doc_id)
        if existing and existing.file_hash == digest and existing.status == "done":
            outcome = FileOutcome(str(path), "skipped", existing.chunks, existing.tokens)
            report.outcomes.append(outcome)
            self.progress.file_done(outcome)
            return None
        self.progress.stage(path, "parsing")
        try:
            document = load_file(path, data)
            chunks = chunk_document(document, self.count_tokens, self.collection.config.chunking)
        except EmbedhubError as error:
            self._fail(report, doc_id, path, digest, str(error))
            return None
        except Exception as error:
            self._fail(
                report,
                doc_id,
                path,
                digest,
                f"{path.name}: could not be parsed ({type(error).__name__}: {error})",
            )
            return None
        status = "updated" if existing and existing.generation is not None else "added"
        return _Prepared(doc_id, path, document.file_type, digest, len(data), chunks, document.pages,
                         document.title, status)  # fmt: skip

    def _fail(self, report: IngestReport, doc_id: str, path: Path, digest: str | None, error: str) -> None:
        self.collection.manifest.record_failure(doc_id, str(path), digest, error)
        outcome = FileOutcome(str(path), "failed", error=error)
        report.outcomes.append(outcome)
        self.progress.file_done(outcome)

    def _embed(self, chunks: list[Chunk], report: IngestReport) -> np.ndarray:
        inputs = self.encoder.tokenize([c.embedding_text() for c in chunks], kind="document", truncate=True)
        raw, computed = embed_through_cache(self.encoder, inputs, self.collection.cache)
        report.embedded_chunks += computed
        report.cached_chunks += len(chunks) - computed
        size = self.collection.config.dimensions
        return finish(raw, size if size != self.encoder.native_dims else None, True)

    def _write(self, group: list[_Prepared], report: IngestReport) -> None:
        manifest, store = self.collection.manifest, self.collection.store
        for prepared in group:
            self.progress.stage(prepared.path, "embedding")
        all_chunks = [chunk for prepared in group for chunk in prepared.chunks]
        vectors = (
            self._embed(all_chunks, report)
            if all_chunks
            else np.zeros((0, self.collection.config.dimensions))
        )
        generation = manifest.next_generation()
        rows = []
        for prepared in group:
            for chunk in prepared.chunks:
                rows.append(
                    ChunkRow(
                        id=f"{prepared.doc_id}:{generation}:{chunk.index}",
                        doc_id=prepared.doc_id,
                        generation=generation,
                        chunk_index=chunk.index,
                        path=str(prepared.path),
                        file_type=prepared.file_type,
                        text=chunk.text,
                        terms=index_text(chunk.embedding_text()),
                        char_start=chunk.char_start,
                        char_end=chunk.char_end,
                        page_start=chunk.page_start,
                        page_end=chunk.page_end,
                        heading_path=chunk.heading_path,
                        content_hash=chunk.content_hash,
                    )
                )
        doc_ids = [prepared.doc_id for prepared in group]
        manifest.begin(generation, doc_ids)
        store.add(rows, vectors)
        manifest.commit(
            generation,
            [
                {
                    "doc_id": p.doc_id,
                    "path": str(p.path),
                    "file_type": p.file_type,
                    "file_hash": p.file_hash,
                    "size": p.size,
                    "chunks": len(p.chunks),
                    "tokens": sum(c.tokens for c in p.chunks),
                    "pages": p.pages,
                    "title": p.title,
                }
                for p in group
            ],
        )
        store.delete_documents(doc_ids, except_generation=generation)
        manifest.cleanup_done(doc_ids)
        for prepared in group:
            outcome = FileOutcome(str(prepared.path), prepared.status, len(prepared.chunks),
                                  sum(c.tokens for c in prepared.chunks))  # fmt: skip
            report.outcomes.append(outcome)
            self.progress.file_done(outcome)

    def _sync(self, paths: Sequence[Path], present: set[str], report: IngestReport) -> None:
        roots = [str(p.expanduser().resolve()) for p in paths]
        gone = [
            record
            for record in self.collection.manifest.documents()
            if record.path not in present
            and any(record.path == root or record.path.startswith(root.rstrip("/") + "/") for root in roots)
            and not Path(record.path).exists()
        ]
        remove_documents(self.collection, [record.doc_id for record in gone])
        report.outcomes.extend(FileOutcome(record.path, "removed") for record in gone)


def remove_documents(collection: Collection, doc_ids: Sequence[str]) -> None:
    """Delete documents: the manifest first (search stops showing them at once), then the chunks;
    an interruption in between is finished by the collection's recovery on next open."""
    if not doc_ids:
        return
    collection.manifest.delete(list(doc_ids))
    collection.store.delete_documents(list(doc_ids))
    collection.manifest.cleanup_done(list(doc_ids))


def remove_paths(collection: Collection, paths: Sequence[Path]) -> list[str]:
    """Remove the documents at these paths (files, or everything under a folder)."""
    targets = [str(p.expanduser().resolve()) for p in paths]
    chosen = [
        record
        for record in collection.manifest.documents()
        if any(record.path == t or record.path.startswith(t.rstrip("/") + "/") for t in targets)
    ]
    remove_documents(collection, [record.doc_id for record in chosen])
    return [record.path for record in chosen]
