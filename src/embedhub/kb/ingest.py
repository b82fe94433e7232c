"""Incremental, crash-safe ingestion of files into a collection.

Unchanged files (same content hash) are skipped without loading; changed files replace their old
chunks; with `sync`, files gone from the given folders are removed. Identical chunks are embedded
once (the collection's embedding cache, keyed by the exact model input). One broken file never
stops a folder: its error is recorded with the reason and the rest goes on. Chunks are embedded
and stored in batches and documents committed in groups (see `Ingestor` and manifest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np

from embedhub.engine.cache import EmbeddingCache, embed_through_cache
from embedhub.errors import EmbedhubError
from embedhub.kb.chunking import CHUNKER_VERSION, Chunk, ChunkingOptions, iter_chunks
from embedhub.kb.collection import Collection
from embedhub.kb.files import gather_files, under_paths, unsupported_reason
from embedhub.kb.lexical import chunk_terms
from embedhub.kb.loaders import LoaderError, load_file
from embedhub.kb.loaders.base import ExtractedDocument, detect_encoding
from embedhub.kb.ocr import OcrOptions
from embedhub.kb.store import ChunkRow
from embedhub.kb.uploads import relative_path
from embedhub.models.base import Encoder, finish

#: documents / chunks written under one generation before it is committed
GROUP_DOCUMENTS = 32
GROUP_CHUNKS = 1024
#: chunks embedded and stored at once: bounds memory (token ids, vectors, rows of one batch) and
#: is how often a job's progress moves and a cancel is noticed; 256 chunks of <= 400 tokens are
#: a handful of forward passes at the default 16k-token batch budget
BATCH_CHUNKS = 256
#: chunks per embedding call inside a batch: progress and cancellation are checked after each, so
#: a slow model (e5 on two cores: ~6 chunks/s) still moves the bar every few seconds. A model that
#: runs several batches at once (a remote encoder's endpoints) gets this many per batch it can run
#: (`Encoder.concurrent_batches`), or its endpoints would take turns with one request in flight
EMBED_CHUNKS = 32
#: batches embedded at the same time for an encoder that runs several batches at once (a remote
#: one): while one batch's answers are parsed and stored, the next one's requests are already
#: queued at the endpoints, which otherwise sat idle between batches (docs/performance.md, "Scale")
OVERLAPPING_BATCHES = 2
#: the thread pools of ingests abandoned on Ctrl-C (`Ingestor(abandon_on_interrupt=True)`), whose
#: last forward pass or write may still be running
_ABANDONED: list[ThreadPoolExecutor] = []


def abandoned_work_running() -> bool:
    """Whether an ingest abandoned on Ctrl-C still has a thread at work (a forward pass can take
    many seconds on a big model). Python joins those threads before it exits, so a command that
    wants to stop at once, with everything worth keeping already on disk, leaves without them."""
    return any(thread.is_alive() for pool in _ABANDONED for thread in list(pool._threads))


class FileStatus(StrEnum):
    """What an ingest did with one file (str-valued: summaries, job outcomes and JSON keep the words)."""

    ADDED = "added"
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"
    REMOVED = "removed"
    UNSUPPORTED = "unsupported"


#: the outcomes that stored new chunks
CHANGED = (FileStatus.ADDED, FileStatus.UPDATED)


@dataclass
class FileOutcome:
    path: str
    status: FileStatus
    chunks: int = 0
    tokens: int = 0
    error: str | None = None
    #: what could not be done for a stored document (pages needing OCR, an OCR limit hit)
    warning: str | None = None


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    embedded_chunks: int = 0
    cached_chunks: int = 0

    def count(self, status: FileStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == FileStatus.FAILED]

    def files(self) -> list[dict]:
        """Every file's outcome (what `kb add --json` lists): path, status, chunks, tokens, and the
        reason of a failed or unsupported file."""
        return [
            {
                "path": o.path,
                "status": str(o.status),
                "chunks": o.chunks,
                "tokens": o.tokens,
                "error": o.error,
            }
            for o in self.outcomes
        ]

    def summary(self) -> dict:
        return {
            **{status.value: self.count(status) for status in FileStatus},
            "chunks": sum(o.chunks for o in self.outcomes if o.status in CHANGED),
            "tokens": sum(o.tokens for o in self.outcomes if o.status in CHANGED),
            "embedded_chunks": self.embedded_chunks,
            "cached_chunks": self.cached_chunks,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": o.path, "error": o.error} for o in self.failures],
            "warnings": [{"path": o.path, "warning": o.warning} for o in self.outcomes if o.warning],
        }


class Progress:
    """Callbacks for a progress display; every default does nothing (implement what you show)."""

    def start(self, files: int) -> None: ...
    def stage(self, path: Path, stage: str) -> None: ...
    def file_done(self, outcome: FileOutcome) -> None: ...
    def embedded(self, path: Path, chunks: int, fraction: float) -> None:
        """After each embedded batch of a file: chunks stored so far and the share of the
        document's characters they cover (0..1), so a bar moves during a long embedding."""


class IngestCancelled(EmbedhubError):
    """The ingest was asked to stop; what it had not committed was rolled back."""


def document_id(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:24]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_tokens(encoder: Encoder, texts: Sequence[str]) -> list[int]:
    """Tokens of each text without special tokens: what chunking measures a chunk by."""
    return [len(ids) for ids in encoder.content_ids(list(texts))] if texts else []


@dataclass
class ParsedFile:
    """A file read and parsed, not yet chunked: the loader's text and what its manifest row says."""

    path: Path
    file_hash: str
    size: int
    extracted: ExtractedDocument
    encoding: str | None

    @property
    def total_chars(self) -> int:
        spans = self.extracted.spans
        return max(1, spans[-1][1] if spans else 1)


class FileFailedError(EmbedhubError):
    """One file cannot be ingested (unreadable, unparsable, broken); the run goes on without it."""


def parse_file(path: Path, data: bytes, digest: str, ocr: OcrOptions | None = None) -> ParsedFile:
    """Parse a file's bytes with the loader its extension names (pages without text read by OCR
    as `ocr` says); a broken file is a `FileFailedError` with the reason (what the report and the
    manifest record)."""
    try:
        extracted = load_file(path, data, ocr)
        encoding = extracted.encoding
        if encoding is None and extracted.file_type not in ("pdf", "docx", "image"):
            encoding = detect_encoding(data)  # text formats whose loader does not report it
    except Exception as error:
        raise FileFailedError(_parse_error(path, error)) from error
    return ParsedFile(path, digest, len(data), extracted, encoding)


def embed_chunks(
    encoder: Encoder, chunks: Sequence[Chunk], cache: EmbeddingCache | None, dimensions: int
) -> tuple[np.ndarray, int]:
    """The stored vectors of chunks (heading path + text, as documents, cut to `dimensions`, unit
    length) and how many were computed rather than found in the cache."""
    inputs = encoder.tokenize([c.embedding_text() for c in chunks], kind="document", truncate=True)
    raw, computed = embed_through_cache(encoder, inputs, cache)
    return finish(raw, dimensions, True), computed


@dataclass
class PreparedDocument:
    """A file parsed, chunked and embedded away from the store (on a Ray worker): everything the
    writer needs to commit it, or the reason it failed."""

    path: str
    file_hash: str
    size: int = 0
    file_type: str = ""
    pages: int | None = None
    title: str | None = None
    encoding: str | None = None
    ocr_engine: str | None = None
    ocr_pages: list[int] = field(default_factory=list)
    warning: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None
    error: str | None = None


class FileEmbedder:
    """Parse, chunk and embed whole files with no store: what a Ray worker runs (kb/distributed.py).

    The chunks of all the files given in one call are embedded together, `EMBED_CHUNKS` at a
    time, as the in-process `Ingestor` batches small documents together."""

    def __init__(
        self,
        encoder: Encoder,
        chunking: ChunkingOptions,
        dimensions: int,
        cache: EmbeddingCache | None = None,
        ocr: OcrOptions | None = None,
    ) -> None:
        self.encoder, self.chunking, self.dimensions, self.cache = encoder, chunking, dimensions, cache
        self.ocr = ocr or default_ocr_options()
        self.count_tokens = partial(content_tokens, encoder)

    def prepare(self, files: Sequence[tuple[str, str, bytes]]) -> tuple[list[PreparedDocument], int]:
        """(path, content hash, bytes) of each file -> its prepared document, in the same order,
        and how many chunks were computed (the others came from the cache)."""
        prepared: list[PreparedDocument] = []
        for path_text, digest, data in files:
            path = Path(path_text)
            document = PreparedDocument(path_text, digest, len(data))
            prepared.append(document)
            try:
                parsed = parse_file(path, data, digest, self.ocr)
                document.chunks = list(iter_chunks(parsed.extracted, self.count_tokens, self.chunking))
            except FileFailedError as error:
                document.error = str(error)
                continue
            except (LoaderError, ValueError) as error:
                document.error = _parse_error(path, error)
                continue
            extracted = parsed.extracted
            document.file_type, document.pages, document.title = (
                extracted.file_type,
                extracted.pages,
                extracted.title,
            )
            document.encoding = parsed.encoding
            document.ocr_engine, document.ocr_pages = extracted.ocr_engine, extracted.ocr_pages
            document.warning = "; ".join(extracted.warnings) or None
        pairs = [(document, chunk) for document in prepared for chunk in document.chunks]
        parts: dict[int, list[np.ndarray]] = {id(document): [] for document in prepared}
        computed_total = 0
        for start in range(0, len(pairs), EMBED_CHUNKS):
            part = pairs[start : start + EMBED_CHUNKS]
            vectors, computed = embed_chunks(self.encoder, [c for _, c in part], self.cache, self.dimensions)
            for (document, _), vector in zip(part, vectors, strict=True):
                parts[id(document)].append(vector)
            computed_total += computed
        for document in prepared:
            if document.error is None:
                vectors = parts[id(document)]
                document.vectors = (
                    np.stack(vectors) if vectors else np.zeros((0, self.dimensions), dtype=np.float32)
                )
        return prepared, computed_total


@dataclass
class _Document:
    """A document being written in the open generation."""

    doc_id: str
    path: Path
    file_type: str
    file_hash: str
    size: int
    pages: int | None
    title: str | None
    encoding: str | None
    status: FileStatus  # ADDED or UPDATED
    ocr_engine: str | None = None
    ocr_pages: list[int] = field(default_factory=list)
    warning: str | None = None
    total_chars: int = 1
    chunks: int = 0
    tokens: int = 0
    finished: bool = False


class Pipeline:
    """Pieces of work run in the order they are handed over: on one thread of their own between
    `open` and `close` (the in-process ingest: rows are stored and groups committed there while
    the next files are read), at once in the caller otherwise (the Ray driver, a writer used on
    its own). A piece is skipped when an earlier one failed: that failure is what `wait` raises."""

    def __init__(self) -> None:
        self._thread: ThreadPoolExecutor | None = None
        self._last: Future | None = None  # the last piece handed over

    def open(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedhub-ingest-write")

    def close(self, wait: bool = True) -> None:
        """Stop the thread; `wait` False leaves a piece still running to end on its own."""
        if self._thread is not None:
            if not wait:
                _ABANDONED.append(self._thread)
            self._thread.shutdown(wait=wait, cancel_futures=not wait)
        self._thread = self._last = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def after(self, work: Callable[..., None], *arguments) -> Future | None:
        """Run `work` after everything handed over before it (its Future), or now (None)."""
        if self._thread is None:
            work(*arguments)
            return None
        previous = self._last

        def after_previous() -> None:
            if previous is not None:
                previous.result()  # finished already (one thread, in order); re-raises its failure
            work(*arguments)

        self._last = self._thread.submit(after_previous)
        return self._last

    def wait(self) -> None:
        """Let the work handed over finish; its error (a cancel, a model failure) is raised here,
        once."""
        last, self._last = self._last, None
        if last is not None:
            last.result()


class DocumentWriter:
    """The commit side of ingestion: documents' rows are written under one open generation and
    committed in groups (manifest.py's protocol), wherever they were parsed and embedded. The
    in-process `Ingestor` parses and embeds, and writes through one; the Ray driver
    (kb/distributed.py) feeds one the `PreparedDocument`s its workers return.

    Small documents share a generation, committed once `group_documents` documents or
    `GROUP_CHUNKS` chunks are written (one store commit and one manifest transaction per group
    instead of per file). Commits go through `pipeline` (in order after the rows written before
    them; at once without a running pipeline). On a cancel or an error, `roll_back` deletes the
    rows of every group not committed: documents committed earlier stay, and a document's
    previous version stays committed."""

    def __init__(
        self,
        collection: Collection,
        progress: Progress | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        group_documents: int = GROUP_DOCUMENTS,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.collection = collection
        self.progress = progress or Progress()
        self.should_stop = should_stop or (lambda: False)
        self.group_documents = group_documents
        self.pipeline = pipeline or Pipeline()
        self.report = IngestReport()
        self._generation: int | None = None
        self._open: list[_Document] = []
        self._written_chunks = 0
        self._handed: list[tuple[int, list[_Document]]] = []  # groups handed over, not yet committed
        self._reporting = threading.Lock()  # outcomes and counts come from the pipeline's threads too
        self._stopping = False  # a failing run stops the pipeline's work at its next check
        #: Ctrl-C abandons the run instead of rolling it back (`abandon`); set by the Ingestor
        self.abandon_on_interrupt = False
        self.abandoned = False

    @property
    def generation(self) -> int | None:
        """The open generation (None between groups)."""
        return self._generation

    def report_outcome(self, outcome: FileOutcome) -> None:
        with self._reporting:
            self.report.outcomes.append(outcome)
            self.progress.file_done(outcome)

    def count_embedded(self, computed: int, cached: int) -> None:
        with self._reporting:
            self.report.embedded_chunks += computed
            self.report.cached_chunks += cached

    def check_stop(self) -> None:
        if self._stopping or self.should_stop():
            raise IngestCancelled("the ingest was cancelled; nothing of the unfinished files was kept")

    def unchanged(self, path: Path, digest: str) -> bool:
        """Whether the committed version of this file has this content and was chunked by this
        chunker (then it is reported as skipped and nothing more is done): adding a file again
        re-chunks it when the chunker changed since."""
        existing = self.collection.manifest.get(document_id(path))
        if (
            existing
            and existing.file_hash == digest
            and existing.status == "done"
            and (existing.chunker_version or 1) == CHUNKER_VERSION
        ):
            outcome = FileOutcome(str(path), FileStatus.SKIPPED, existing.chunks, existing.tokens)
            self.report_outcome(outcome)
            return True
        return False

    def begin_document(
        self,
        path: Path,
        digest: str,
        size: int,
        file_type: str,
        pages: int | None,
        title: str | None,
        encoding: str | None,
    ) -> _Document:
        """Open a document in the current generation (started if none is open)."""
        doc_id = document_id(path)
        existing = self.collection.manifest.get(doc_id)
        status = FileStatus.UPDATED if existing and existing.generation is not None else FileStatus.ADDED
        document = _Document(doc_id, path, file_type, digest, size, pages, title, encoding, status)
        if self._generation is None:
            self._generation = self.collection.manifest.next_generation()
        self.collection.manifest.begin(self._generation, [document.doc_id])
        self._open.append(document)
        return document

    def written(self, chunks: int) -> None:
        """Count chunks of the open generation written (or on their way to the store)."""
        self._written_chunks += chunks

    def store(self, pairs: Sequence[tuple[_Document, Chunk]], vectors: np.ndarray, generation: int) -> None:
        """Write chunks of open documents with their vectors (one `store.add` of `generation`)."""
        analyzer = self.collection.config.analyzer
        rows = [
            ChunkRow(
                id=f"{document.doc_id}:{generation}:{chunk.index}",
                doc_id=document.doc_id,
                generation=generation,
                chunk_index=chunk.index,
                path=str(document.path),
                file_type=document.file_type,
                text=chunk.text,
                terms=chunk_terms(chunk.text, chunk.heading_path, analyzer),
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
                heading_path=chunk.heading_path,
                content_hash=chunk.content_hash,
            )
            for document, chunk in pairs
        ]
        self.collection.store.add(rows, vectors)

    def group_full(self, pending_chunks: int = 0) -> bool:
        documents_full = len(self._open) >= self.group_documents
        return documents_full or self._written_chunks + pending_chunks >= GROUP_CHUNKS

    def write(self, prepared: PreparedDocument) -> None:
        """Write and (with its group) commit a document prepared elsewhere; a failed one is
        recorded as failed. Rows go to the store `BATCH_CHUNKS` at a time."""
        path = Path(prepared.path)
        if prepared.error is not None:
            self.fail(path, prepared.file_hash, prepared.error)
            return
        self.check_stop()
        document = self.begin_document(
            path,
            prepared.file_hash,
            prepared.size,
            prepared.file_type,
            prepared.pages,
            prepared.title,
            prepared.encoding,
        )
        document.ocr_engine, document.ocr_pages = prepared.ocr_engine, prepared.ocr_pages
        document.warning = prepared.warning
        for start in range(0, len(prepared.chunks), BATCH_CHUNKS):
            chunks = prepared.chunks[start : start + BATCH_CHUNKS]
            pairs = [(document, chunk) for chunk in chunks]
            self.store(pairs, prepared.vectors[start : start + len(chunks)], self._generation)
            self.written(len(chunks))
        document.chunks = len(prepared.chunks)
        document.tokens = sum(chunk.tokens for chunk in prepared.chunks)
        document.finished = True
        if self.group_full():
            self.commit()

    def commit(self) -> None:
        """Make every finished document of the open generation the committed version (through the
        pipeline, after the rows handed over before)."""
        if self._generation is None:
            return
        handed = (self._generation, [d for d in self._open if d.finished])
        self._generation, self._open, self._written_chunks = None, [], 0
        self._handed.append(handed)
        self.pipeline.after(self._commit_handed, handed)

    def _commit_handed(self, handed: tuple[int, list[_Document]]) -> None:
        self.commit_group(*handed)
        self._handed.remove(handed)

    def commit_group(self, generation: int, group: list[_Document]) -> None:
        """One manifest transaction makes `generation` these documents' version; then their
        older rows go."""
        manifest, store = self.collection.manifest, self.collection.store
        manifest.commit(
            generation,
            [
                {
                    "doc_id": d.doc_id,
                    "path": str(d.path),
                    "file_type": d.file_type,
                    "file_hash": d.file_hash,
                    "size": d.size,
                    "chunks": d.chunks,
                    "tokens": d.tokens,
                    "pages": d.pages,
                    "title": d.title,
                    "encoding": d.encoding,
                    "chunker_version": CHUNKER_VERSION,
                    "ocr_engine": d.ocr_engine,
                    "ocr_pages": d.ocr_pages,
                    "warning": d.warning,
                }
                for d in group
            ],
        )
        doc_ids = [d.doc_id for d in group]
        store.delete_documents(doc_ids, except_generation=generation)
        manifest.cleanup_done(doc_ids)
        for document in group:
            outcome = FileOutcome(str(document.path), document.status, document.chunks, document.tokens)
            outcome.warning = document.warning
            self.report_outcome(outcome)

    def drop_document(self, document: _Document) -> None:
        """Delete one document's rows of the open generation (its previous version stays), once
        its rows in flight are written."""
        self.pipeline.wait()
        self._open = [d for d in self._open if d is not document]
        self.drop_rows(document, self._generation)

    def drop_rows(self, document: _Document, generation: int) -> None:
        self.collection.store.delete_documents([document.doc_id], only_generation=generation)
        self.collection.manifest.clear_pending([(document.doc_id, generation)])

    def roll_back(self) -> None:
        """Cancelled or broken run: stop the pipeline's work at its next check, then delete the
        rows of every group not committed: the open one and any handed over whose commit did not
        happen. On a failure here the pending marks stay and the collection's recovery finishes
        it on next open."""
        self._stopping = True
        try:
            with contextlib.suppress(BaseException):  # the run is failing already: that error is raised
                self.pipeline.wait()
            for generation, group in self._handed:
                for document in group:
                    with contextlib.suppress(Exception):
                        self.drop_rows(document, generation)
            self._handed = []
            for document in list(self._open):
                with contextlib.suppress(Exception):
                    self.drop_document(document)
            self._generation, self._open, self._written_chunks = None, [], 0
        finally:
            self._stopping = False

    def abandon(self) -> None:
        """Ctrl-C, for a caller that wants to stop at once (an evaluation's throw-away collection):
        the work in flight is not waited for. Its pieces see the stop at their next check and write
        nothing more; rows already written under generations not committed keep their pending
        marks, which the collection's recovery deletes on its next open, as after a crash."""
        self._stopping = True  # for good: this writer is done
        self.abandoned = True
        self._handed, self._open, self._generation, self._written_chunks = [], [], None, 0

    def fail(self, path: Path, digest: str | None, error: str) -> None:
        manifest = self.collection.manifest
        manifest.record_failure(document_id(path), str(path), digest, error)
        manifest.record_problem(
            str(path), relative_path(self.collection, str(path)), "failed", error, "ingest"
        )
        outcome = FileOutcome(str(path), FileStatus.FAILED, error=error)
        self.report_outcome(outcome)

    def unsupported(self, paths: Sequence[Path]) -> None:
        """Files found in a folder that no loader reads: reported and kept with the reason."""
        for path in paths:
            reason = unsupported_reason(path)
            self.collection.manifest.record_problem(
                str(path), relative_path(self.collection, str(path)), "unsupported", reason, "ingest"
            )
            self.report.outcomes.append(FileOutcome(str(path), FileStatus.UNSUPPORTED, error=reason))

    def sync(self, paths: Sequence[Path], present: set[str]) -> None:
        """Remove the documents under these paths whose files are gone."""
        gone = [
            record
            for record in under_paths(self.collection.manifest.documents(), paths, lambda record: record.path)
            if record.path not in present and not Path(record.path).exists()
        ]
        remove_documents(self.collection, [record.doc_id for record in gone])
        self.report.outcomes.extend(FileOutcome(record.path, FileStatus.REMOVED) for record in gone)

    def run(
        self,
        paths: Sequence[Path],
        glob: str | None,
        sync: bool,
        write_files: Callable[[list[Path]], None],
        exclude: Iterable[Path] = (),
    ) -> IngestReport:
        """One ingest: gather the files (but `exclude`), let `write_files` parse, embed and write
        them (in this process, or on Ray workers), commit the last group and wait for the
        pipeline, then (`sync`) remove what is gone."""
        started = time.perf_counter()
        self.report = report = IngestReport()
        files, unsupported = gather_files(paths, glob)
        excluded = {str(path) for path in exclude}
        files = [path for path in files if str(path) not in excluded]
        self.unsupported(unsupported)
        self.progress.start(len(files))
        try:
            write_files(files)
            self.commit()
            self.pipeline.wait()  # the run is over when the last group is committed
        except KeyboardInterrupt:
            self.abandon() if self.abandon_on_interrupt else self.roll_back()
            raise
        except BaseException:
            self.roll_back()
            raise
        if sync:
            self.sync(paths, {str(p) for p in files})
        self.collection.maintain_index()
        report.seconds = time.perf_counter() - started
        return report


class Ingestor:
    """Ingests files in this process, in bounded memory, writing through a `DocumentWriter`.

    A document is loaded whole (the loaders need its bytes), but its chunks are produced lazily
    (`iter_chunks`) and embedded and stored `BATCH_CHUNKS` at a time, each batch one `store.add`
    under the open generation (see manifest.py); the chunks of small documents share a batch.

    Ingestion is pipelined: full batches are embedded on a background thread (two at once for
    an encoder that runs several batches at once, `OVERLAPPING_BATCHES`), and stored and
    committed, in order, on the writer's pipeline thread, while this thread reads, parses, chunks
    and tokenises the next files; so the model (or a remote encoder's endpoints) is not idle
    while files are read or rows written. At most `OVERLAPPING_BATCHES` + 1 batches of chunks,
    token ids and vectors are in memory. A dropped document or a roll-back waits for the work in
    flight, so the generation protocol sees the same order of writes as without the pipeline; a
    failure stops the pieces handed over after it, and the groups not committed are rolled back.

    `should_stop` is polled before every batch: when it turns true, nothing more is embedded,
    the open generation's rows are deleted (documents committed earlier stay, and a document's
    previous version stays committed) and `IngestCancelled` is raised. Ctrl-C does the same,
    after the forward pass in flight; with `abandon_on_interrupt` (a throw-away collection: an
    evaluation's) it does not wait for it (`DocumentWriter.abandon`)."""

    def __init__(
        self,
        collection: Collection,
        encoder: Encoder,
        progress: Progress | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        ocr: OcrOptions | None = None,
        abandon_on_interrupt: bool = False,
    ) -> None:
        collection.check_encoder(encoder)
        self.collection = collection
        self.encoder = encoder
        self.ocr = ocr or default_ocr_options()
        self.count_tokens = partial(content_tokens, encoder)
        # small files: a group of one-chunk documents is what one embedding call gets
        self.writer = DocumentWriter(
            collection,
            progress,
            should_stop=should_stop,
            group_documents=GROUP_DOCUMENTS * encoder.concurrent_batches,
            pipeline=Pipeline(),
        )
        self.writer.abandon_on_interrupt = abandon_on_interrupt
        self.progress = self.writer.progress
        self._batch: list[tuple[_Document, Chunk]] = []
        self._embedder: ThreadPoolExecutor | None = None  # embeds batches, OVERLAPPING_BATCHES at once
        self._overlapping = OVERLAPPING_BATCHES if encoder.concurrent_batches > 1 else 1
        self._in_flight: deque[Future] = deque()  # the batches handed over and not stored yet

    @property
    def report(self) -> IngestReport:
        return self.writer.report

    def ingest(self, paths: Sequence[Path], *, glob: str | None = None, sync: bool = False) -> IngestReport:
        pipeline = self.writer.pipeline
        pipeline.open()
        self._embedder = ThreadPoolExecutor(
            max_workers=self._overlapping, thread_name_prefix="embedhub-ingest-embed"
        )
        try:
            return self.writer.run(paths, glob, sync, self._ingest_files)
        finally:
            self._batch = []
            self._in_flight.clear()
            wait = not self.writer.abandoned
            if not wait:
                _ABANDONED.append(self._embedder)
            self._embedder.shutdown(wait=wait, cancel_futures=True)
            pipeline.close(wait=wait)
            self._embedder = None

    def _ingest_files(self, files: list[Path]) -> None:
        for path in files:
            self.writer.check_stop()
            self._ingest_file(path)
            if self.writer.group_full(len(self._batch)):
                self.commit()
        self.commit()

    def commit(self) -> None:
        """Hand over the open generation's last batch, then its commit."""
        if self.writer.generation is not None:
            self._flush()
        self.writer.commit()

    def _ingest_file(self, path: Path) -> None:
        writer = self.writer
        try:
            data = path.read_bytes()
        except OSError as error:
            writer.fail(path, None, f"cannot read the file: {error.strerror or error}")
            return
        digest = file_hash(data)
        if writer.unchanged(path, digest):
            return
        self.progress.stage(path, "parsing")
        try:
            parsed = parse_file(path, data, digest, self.ocr)
        except FileFailedError as error:
            writer.fail(path, digest, str(error))
            return
        del data  # the bytes are not needed any more; a 50 MB file should not be held twice
        extracted = parsed.extracted
        document = writer.begin_document(
            path, digest, parsed.size, extracted.file_type, extracted.pages, extracted.title, parsed.encoding
        )
        document.total_chars = parsed.total_chars
        document.ocr_engine, document.ocr_pages = extracted.ocr_engine, extracted.ocr_pages
        document.warning = "; ".join(extracted.warnings) or None
        self.progress.stage(path, "embedding")
        try:
            for chunk in iter_chunks(extracted, self.count_tokens, self.collection.config.chunking):
                self._batch.append((document, chunk))
                document.chunks += 1
                document.tokens += chunk.tokens
                if len(self._batch) >= BATCH_CHUNKS:
                    self._flush()
        except (LoaderError, ValueError) as error:
            # this document is broken; a cancel, a stopped queue or a model error stops the run
            self._batch = [(d, c) for d, c in self._batch if d is not document]
            writer.drop_document(document)
            writer.fail(path, digest, _parse_error(path, error))
            return
        document.finished = True

    def _flush(self) -> None:
        """Hand the current batch over to be embedded and stored, once fewer than the batches the
        encoder can overlap are in flight (so at most that many plus one are in memory)."""
        if not self._batch:
            return
        writer = self.writer
        writer.check_stop()
        batch, self._batch = self._batch, []
        writer.written(len(batch))
        if self._embedder is None:  # not inside `ingest`: no pipeline
            writer.store(batch, self._embed_batch(batch), writer.generation)
            return
        while len(self._in_flight) >= self._overlapping:
            self._in_flight.popleft().result()
        vectors = self._embedder.submit(self._embed_batch, batch)
        self._in_flight.append(writer.pipeline.after(self._store_batch, batch, vectors, writer.generation))

    def _store_batch(self, batch: list[tuple[_Document, Chunk]], vectors: Future, generation: int) -> None:
        """One `store.add` of the batch's generation, when its vectors are there (and the run
        was not stopped meanwhile)."""
        computed = vectors.result()
        self.writer.check_stop()
        self.writer.store(batch, computed, generation)

    def _embed_batch(self, batch: list[tuple[_Document, Chunk]]) -> np.ndarray:
        """The batch's vectors, `EMBED_CHUNKS` per model call (per batch the model runs at once)."""
        parts = []
        step = EMBED_CHUNKS * self.encoder.concurrent_batches
        for start in range(0, len(batch), step):
            part = batch[start : start + step]
            parts.append(self._embed([chunk for _, chunk in part]))
            self.writer.check_stop()  # a cancel during the forward pass: do not write what it produced
            document, chunk = part[-1]
            fraction = min(1.0, chunk.char_end / document.total_chars)
            self.progress.embedded(document.path, chunk.index + 1, fraction)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        config = self.collection.config
        vectors, computed = embed_chunks(self.encoder, chunks, self.collection.cache, config.dimensions)
        self.writer.count_embedded(computed, len(chunks) - computed)  # from two threads at once
        return vectors


def default_ocr_options() -> OcrOptions:
    """OCR as the environment's settings say (EMBEDHUB_OCR, _OCR_PAGE_SECONDS, _OCR_MAX_PAGES)."""
    from embedhub.config import Settings

    return OcrOptions.from_settings(Settings())


def _parse_error(path: Path, error: Exception) -> str:
    if isinstance(error, EmbedhubError):
        return str(error)
    return f"{path.name}: could not be parsed ({type(error).__name__}: {error})"


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
    chosen = under_paths(collection.manifest.documents(), paths, lambda record: record.path)
    remove_documents(collection, [record.doc_id for record in chosen])
    return [record.path for record in chosen]
