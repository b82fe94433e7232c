"""The store contract: chunk rows with vectors, written atomically in groups, searched densely
and lexically with metadata filters. LanceDB is the embedded default; a server or cluster engine
(Milvus, Qdrant, pgvector) implements the same few methods."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from embedhub.errors import EmbedhubError


class StoreUnavailableError(EmbedhubError):
    """The store's engine cannot be reached or opened (a server down, a database file another
    process holds): the request may succeed later or with another URI, so the server answers 503."""


class StoreConflictError(EmbedhubError):
    """The store's engine already holds a collection this one did not write (409)."""


@dataclass(frozen=True)
class ChunkRow:
    """One stored chunk. `generation` ties it to one committed version of its document."""

    id: str
    doc_id: str
    generation: int
    chunk_index: int
    path: str
    file_type: str
    text: str
    terms: str
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None
    heading_path: tuple[str, ...]
    content_hash: str


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filters: a path glob, file types, and a page range that a chunk must overlap."""

    path_glob: str | None = None
    file_types: tuple[str, ...] = ()
    page_min: int | None = None
    page_max: int | None = None

    def matches(self, row: ChunkRow) -> bool:
        if self.path_glob and not (
            fnmatch.fnmatch(row.path, self.path_glob) or fnmatch.fnmatch(row.path, "*/" + self.path_glob)
        ):
            return False
        if self.file_types and row.file_type not in self.file_types:
            return False
        if self.page_min is not None and (row.page_end is None or row.page_end < self.page_min):
            return False
        return not (self.page_max is not None and (row.page_start is None or row.page_start > self.page_max))

    @property
    def empty(self) -> bool:
        return not (
            self.path_glob or self.file_types or self.page_min is not None or self.page_max is not None
        )


@dataclass(frozen=True)
class VectorIndexOptions:
    """When a store builds its approximate (ANN) vector index and how it searches it
    (`Settings.ann_min_rows`, `Settings.ann_ef`)."""

    min_rows: int = 50_000
    ef: int = 150

    @classmethod
    def from_settings(cls, settings) -> VectorIndexOptions:
        return cls(min_rows=settings.ann_min_rows, ef=settings.ann_ef)


@dataclass
class Hit:
    row: ChunkRow
    score: float
    retrievers: list[str] = field(default_factory=list)


class Store(ABC):
    """Chunk storage for one collection.

    Dense search is exact until the collection is big enough for an approximate index to pay
    (`VectorIndexOptions.min_rows`); `ensure_vector_index`, called after ingests commit, builds it
    and keeps it current, and `dense_search(..., exact=True)` still scans every row."""

    index_options: VectorIndexOptions = VectorIndexOptions()

    @abstractmethod
    def add(self, rows: Sequence[ChunkRow], vectors: np.ndarray) -> None:
        """Write rows and their vectors in one atomic commit."""

    @abstractmethod
    def delete_documents(
        self,
        doc_ids: Sequence[str],
        *,
        except_generation: int | None = None,
        only_generation: int | None = None,
    ) -> None:
        """Delete the chunks of documents (all, all but one generation, or one generation)."""

    @abstractmethod
    def dense_search(
        self, vector: np.ndarray, k: int, where: SearchFilter, *, exact: bool = False
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity (score = cosine); through the ANN index when there
        is one, unless `exact`."""

    def ensure_vector_index(self, *, force: bool = False, rebuild: bool = False) -> bool:
        """Build the ANN index once the store holds `index_options.min_rows` rows (`force`: at
        any size), keep it current, retrain it with `rebuild`; True when it built or updated."""
        return False

    def vector_index_info(self) -> dict:
        """What dense search runs on: the index type, rows indexed, build and search parameters."""
        return {"type": "exact", "rows_indexed": 0}

    @abstractmethod
    def lexical_search(self, terms: str, k: int, where: SearchFilter) -> list[Hit]:
        """BM25 over the analysed terms (whitespace-separated)."""

    @abstractmethod
    def rewrite_terms(self, terms_of: Callable[[str, tuple[str, ...]], str]) -> int:
        """Recompute every row's analysed terms from its text and heading path (when the analyzer
        changes: no re-embedding) and rebuild the full-text index; returns the rows rewritten."""

    @abstractmethod
    def count(self) -> int:
        """Number of stored chunks."""

    @abstractmethod
    def rows_of(self, doc_id: str) -> list[ChunkRow]:
        """The stored chunks of one document, in order."""

    @abstractmethod
    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id."""

    def destroy(self) -> None:  # noqa: B027 - optional hook
        """Delete what the store keeps outside its folder (a server's collection); the caller
        deletes the folder."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
