"""Embedding cache: raw pooled vectors keyed by (model, backend, exact model input ids).

The key is the framed token ids, which already hold the instruction and the text, so a query and
a document with the same text never collide. Vectors are stored at native size before MRL and
normalisation: one entry serves every `dimensions` a client asks for. Memory is bounded by bytes
(LRU); an optional SQLite file keeps entries across restarts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def vector_source(encoder) -> str:
    """What produced a vector besides its input: the model and the backend that ran it. float32
    and bfloat16 (or int8) vectors of one model differ slightly, so a disk cache shared by runs
    with different backends must not hand one's vectors to the other."""
    return f"{encoder.spec.name}\0{getattr(encoder, 'backend', 'torch')}"


def cache_key(model: str, ids: Sequence[int]) -> bytes:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(model.encode())
    digest.update(b"\0")
    digest.update(np.asarray(ids, dtype=np.int64).tobytes())
    return digest.digest()


class EmbeddingCache:
    """A byte-bounded LRU of vectors, optionally backed by a SQLite file."""

    def __init__(self, max_bytes: int, path: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._database: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._database = sqlite3.connect(str(path), check_same_thread=False)
            self._database.execute("PRAGMA journal_mode=WAL")
            self._database.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB)")
            self._database.commit()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get_many(self, keys: Sequence[bytes]) -> list[np.ndarray | None]:
        found: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                vector = self._entries.get(key)
                if vector is None and self._database is not None:
                    row = self._database.execute(
                        "SELECT vector FROM vectors WHERE key = ?", (key,)
                    ).fetchone()
                    if row is not None:
                        vector = np.frombuffer(row[0], dtype=np.float32)
                        self._insert(key, vector)
                if vector is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    # A disk hit may not enter memory (no memory budget, or a vector larger than
                    # it), so only keys that are in memory are refreshed.
                    if key in self._entries:
                        self._entries.move_to_end(key)
                found.append(vector)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if self.max_bytes <= 0 and self._database is None:
            return
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._insert(key, np.array(vector, dtype=np.float32))
            if self._database is not None:
                self._database.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [
                        (key, np.asarray(v, np.float32).tobytes())
                        for key, v in zip(keys, vectors, strict=True)
                    ],
                )
                self._database.commit()

    def _insert(self, key: bytes, vector: np.ndarray) -> None:
        if key in self._entries or vector.nbytes > self.max_bytes:
            return
        self._entries[key] = vector
        self._bytes += vector.nbytes
        while self._bytes > self.max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes

    def close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None


@dataclass
class CachedBatch:
    """One batch of model inputs split into rows found in a cache (already in `vectors`) and the
    rows still to compute (`missing`). Every caller, sync or async, computes the missing rows its
    own way (the encoder, the queue from a thread, the queue from the event loop) and hands them
    to `complete`, so the cache logic lives here once."""

    vectors: np.ndarray
    missing: list[int]
    keys: list[bytes]
    cache: EmbeddingCache | None

    def complete(self, computed: np.ndarray) -> np.ndarray:
        if self.missing:
            if self.cache is not None:
                self.cache.put_many([self.keys[i] for i in self.missing], computed)
            self.vectors[self.missing] = computed
        return self.vectors


def look_up(cache: EmbeddingCache | None, encoder, inputs: Sequence[Sequence[int]]) -> CachedBatch:
    """Raw native vectors of the inputs the cache holds; with no cache, every row is missing."""
    vectors = np.zeros((len(inputs), encoder.native_dims), dtype=np.float32)
    if cache is None:
        return CachedBatch(vectors, list(range(len(inputs))), [], None)
    source = vector_source(encoder)
    keys = [cache_key(source, ids) for ids in inputs]
    missing = []
    for index, vector in enumerate(cache.get_many(keys)):
        if vector is None:
            missing.append(index)
        else:
            vectors[index] = vector
    return CachedBatch(vectors, missing, keys, cache)


def embed_through_cache(
    encoder, inputs: Sequence[Sequence[int]], cache: EmbeddingCache | None
) -> tuple[np.ndarray, int]:
    """Raw native vectors for framed inputs, computing only the cache misses with the encoder;
    returns the vectors and how many were computed."""
    batch = look_up(cache, encoder, inputs)
    if batch.missing:
        batch.complete(encoder.embed_token_ids([inputs[i] for i in batch.missing]))
    return batch.vectors, len(batch.missing)
