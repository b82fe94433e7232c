"""Milvus: the same store contract on a Milvus server or cluster, or on Milvus Lite (a local file,
the same pymilvus API) when no URI is given.

Dense search is exact (FLAT index, COSINE metric: the score is the cosine similarity, as in
LanceDB) until the collection holds `index_options.min_rows` rows; then the FLAT index is
replaced by HNSW, on a server and on Milvus Lite alike (see `ensure_vector_index`).

Lexical search is Milvus's own BM25 full-text search: a BM25 function turns the `terms` field into
a sparse vector that Milvus scores. Milvus Lite's analyzers offer only the `standard` and `jieba`
tokenizers (no `whitespace`), and either would re-segment embedhub's analysed terms (jieba
differently from embedhub's dictionary, `standard` at punctuation inside a term). So each term is
stored hex-encoded (its UTF-8 bytes): a run of letters and digits that the standard tokenizer
keeps whole. Milvus then indexes exactly embedhub's terms, on Lite and on a cluster alike, and
reading a row decodes them back.

Writes are not transactions in Milvus, and need not be: embedhub's generation protocol (the
manifest plus `Searcher._visible`) hides rows of an uncommitted generation and deletes them on
recovery, so replacing a document atomically only needs `delete_documents` with its filters.
Every request is made at Strong consistency, so a search sees the writes made before it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from embedhub.errors import EmbedhubError, InvalidInputError
from embedhub.kb.store.base import (
    ChunkRow,
    Hit,
    SearchFilter,
    Store,
    StoreConflictError,
    StoreUnavailableError,
)

LITE_FILE = "milvus.db"  # the Milvus Lite database in the store folder when no URI is given
OWNER_FILE = "milvus.json"  # which Milvus collection at which URI this store folder owns
WRITE_BATCH = 1000  # rows per insert/upsert request (well under gRPC's message limit)
ID_BATCH = 500  # ids per `in [...]` filter
MAX_LIMIT = 16384  # Milvus's largest search or query limit
CONSISTENCY = "Strong"
TEXT_LIMIT = 65535  # Milvus's largest VARCHAR, bytes
_SCALARS = (
    "id",
    "doc_id",
    "generation",
    "chunk_index",
    "path",
    "file_type",
    "text",
    "char_start",
    "char_end",
    "page_start",
    "page_end",
    "heading_path",
    "content_hash",
)
OUTPUT_FIELDS = [*_SCALARS, "terms"]
VECTOR_INDEX = "vector"  # Milvus names a field's index after the field
HNSW_M = 16  # graph neighbours per node
HNSW_EF_CONSTRUCTION = 128  # candidates kept while inserting a node
EXACT_BATCH = 4096  # rows whose vectors one exact-search page compares
ROWS_PER_EF = 100  # HNSW search breadth: at least one candidate per this many rows (see `search_ef`)
MAX_EF = 4096
ROW_COUNT_SECONDS = 30.0  # how long the row count that sizes `ef` is reused (a count(*) is ~10 ms on Lite)


class MilvusStoreError(EmbedhubError):
    """The Milvus collection cannot be used (owned by another embedhub collection, unreachable)."""


class MilvusUnavailableError(MilvusStoreError, StoreUnavailableError):
    """Milvus cannot be reached at the URI, or Milvus Lite's file is held by another process."""


class MilvusCollectionConflictError(MilvusStoreError, StoreConflictError):
    """The Milvus collection of this name was created by another embedhub collection."""


def encode_terms(terms: str) -> str:
    """Each whitespace-separated term as the hex of its UTF-8 bytes (see the module docstring)."""
    return " ".join(term.encode("utf-8").hex() for term in terms.split())


def decode_terms(encoded: str) -> str:
    return " ".join(bytes.fromhex(token).decode("utf-8") for token in encoded.split())


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a double-quoted string with escapes Milvus reads


def like_pattern(glob: str) -> str:
    """A LIKE pattern matching every path the glob matches, and possibly more: a literal `%`, `_`
    or `\\` becomes a wildcard instead of being escaped, because Milvus Lite's BM25 search drops
    every row under an escaped LIKE (its dense search does not). The searcher re-checks each hit
    with `SearchFilter.matches`, so the extra matches never reach a result."""
    return glob.replace("\\", "_").replace("*", "%").replace("?", "_")


def filter_expression(where: SearchFilter) -> str:
    """A Milvus boolean expression prefiltering `where` (see `like_pattern`)."""
    parts = []
    if where.path_glob:
        pattern = like_pattern(where.path_glob)
        if not pattern.startswith("%"):
            pattern = "%" + pattern
        parts.append(f"path like {_quote(pattern)}")
    if where.file_types:
        parts.append("file_type in [" + ", ".join(_quote(t) for t in where.file_types) + "]")
    if where.page_min is not None:
        parts.append(f"(page_end is not null and page_end >= {int(where.page_min)})")
    if where.page_max is not None:
        parts.append(f"(page_start is not null and page_start <= {int(where.page_max)})")
    return " and ".join(parts)


def collection_name(folder: Path) -> str:
    """`embedhub_<collection>_<store folder>_<hash>`: readable in a shared cluster, and distinct
    for names that differ only in characters Milvus does not allow ('.', '-')."""
    key = f"{folder.parent.name}/{folder.name}"
    slug = re.sub(r"[^A-Za-z0-9_]", "_", key.replace("/", "__"))[:200]
    return f"embedhub_{slug}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"


class MilvusStore(Store):
    def __init__(
        self, folder: Path, dimensions: int, uri: str | None = None, token: str | None = None
    ) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as error:
            raise InvalidInputError(
                "the milvus store needs pymilvus: pip install 'embedhub[milvus]'"
            ) from error
        self.folder = folder
        self.dimensions = dimensions
        folder.mkdir(parents=True, exist_ok=True)
        self.uri = uri or str(folder / LITE_FILE)
        self.name = collection_name(folder)
        self._vector_index_type: str | None = None
        self._row_count: tuple[float, int] | None = None  # (when counted, rows): sizes `ef` only
        try:
            self.client = MilvusClient(uri=self.uri, token=token or "")
        except Exception as error:  # pymilvus raises several types for a bad or unreachable URI
            hint = ""
            if "://" not in self.uri:
                hint = (
                    "; Milvus Lite opens a database file from one process at a time: if another "
                    "embedhub process (a running `embedhub serve`) has it, go through that one's HTTP "
                    "API, or keep the collection in a Milvus server (--uri http://HOST:19530)"
                )
            raise MilvusUnavailableError(f"cannot open Milvus at {self.uri}: {error}{hint}") from error
        owner_path = folder / OWNER_FILE
        owner = {"uri": self.uri, "collection": self.name}
        exists = self.client.has_collection(self.name)
        if not exists:
            self._create()
            owner_path.write_text(json.dumps(owner))
        elif not owner_path.exists() or json.loads(owner_path.read_text()) != owner:
            raise MilvusCollectionConflictError(
                f"Milvus at {self.uri} already has a collection {self.name!r} that this embedhub "
                f"collection ({folder.parent}) did not create; drop it in Milvus or use another "
                "collection name or URI"
            )
        self.client.load_collection(self.name)

    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("generation", DataType.INT64)
        schema.add_field("chunk_index", DataType.INT32)
        schema.add_field("path", DataType.VARCHAR, max_length=TEXT_LIMIT)
        schema.add_field("file_type", DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_LIMIT)
        schema.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=TEXT_LIMIT,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("char_start", DataType.INT64)
        schema.add_field("char_end", DataType.INT64)
        schema.add_field("page_start", DataType.INT32, nullable=True)
        schema.add_field("page_end", DataType.INT32, nullable=True)
        schema.add_field(
            "heading_path",
            DataType.ARRAY,
            element_type=DataType.VARCHAR,
            max_capacity=256,
            max_length=TEXT_LIMIT,
        )
        schema.add_field("content_hash", DataType.VARCHAR, max_length=256)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimensions)
        schema.add_function(
            Function(
                name="terms_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.name, schema=schema, consistency_level=CONSISTENCY)
        # Waiting for the (empty) indexes asks the server for a timestamp, which Milvus Lite does
        # not implement (it logs an error per index); a server is waited for.
        self.client.create_index(self.name, index, sync="://" in self.uri)

    # --- writing ------------------------------------------------------------------------

    def _record(self, row: ChunkRow, vector: np.ndarray) -> dict:
        record = {name: getattr(row, name) for name in _SCALARS}
        record["heading_path"] = list(row.heading_path)
        record["terms"] = encode_terms(row.terms)
        record["vector"] = vector.tolist()
        for name in ("path", "text", "terms"):
            if len(record[name].encode("utf-8")) > TEXT_LIMIT:
                raise InvalidInputError(
                    f"chunk {row.id} of {row.path}: its {name} is over Milvus's {TEXT_LIMIT}-byte "
                    "limit; make the collection's chunks smaller (--chunk-tokens)"
                )
        return record

    def add(self, rows: Sequence[ChunkRow], vectors: np.ndarray) -> None:
        if not rows:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(rows), self.dimensions)
        records = [self._record(row, vector) for row, vector in zip(rows, vectors, strict=True)]
        for start in range(0, len(records), WRITE_BATCH):
            self.client.insert(self.name, records[start : start + WRITE_BATCH])
        self._row_count = None

    def delete_documents(self, doc_ids, *, except_generation=None, only_generation=None) -> None:
        for start in range(0, len(doc_ids), ID_BATCH):
            expression = "doc_id in [" + ", ".join(_quote(d) for d in doc_ids[start : start + ID_BATCH]) + "]"
            if except_generation is not None:
                expression += f" and generation != {int(except_generation)}"
            if only_generation is not None:
                expression += f" and generation == {int(only_generation)}"
            self.client.delete(self.name, filter=expression)
        self._row_count = None

    def rewrite_terms(self, terms_of) -> int:
        """Upserts whole rows with new terms, batch by batch as they are read; Milvus recomputes
        their BM25 vectors on write. The iterator pages in primary-key order, so a row upserted
        behind its cursor is not read again."""
        rewritten = 0
        iterator = self.client.query_iterator(
            self.name,
            batch_size=WRITE_BATCH,
            output_fields=[*OUTPUT_FIELDS, "vector"],
            consistency_level=CONSISTENCY,
        )
        try:
            while batch := iterator.next():
                updates = []
                for record in batch:
                    row = self._row(record)
                    vector = np.asarray(record["vector"], dtype=np.float32)
                    updates.append(
                        self._record(replace(row, terms=terms_of(row.text, row.heading_path)), vector)
                    )
                self.client.upsert(self.name, updates)
                rewritten += len(updates)
        finally:
            iterator.close()
        return rewritten

    # --- reading ------------------------------------------------------------------------

    @staticmethod
    def _row(record: dict) -> ChunkRow:
        values = {name: record[name] for name in _SCALARS}
        values["heading_path"] = tuple(record["heading_path"] or ())
        values["terms"] = decode_terms(record["terms"])
        return ChunkRow(**values)

    def _search(
        self, data, field: str, metric: str, k: int, where: SearchFilter, params: dict | None = None
    ) -> list[dict]:
        search_params = {"metric_type": metric, "params": params} if params else {"metric_type": metric}
        results = self.client.search(
            self.name,
            data=data,
            anns_field=field,
            limit=min(k, MAX_LIMIT),
            filter=filter_expression(where),
            output_fields=OUTPUT_FIELDS,
            search_params=search_params,
            consistency_level=CONSISTENCY,
        )
        # the prefilter may let more through than the glob means (see `like_pattern`)
        return [hit for hit in (results[0] if results else []) if where.matches(self._row(hit["entity"]))]

    def dense_search(
        self, vector: np.ndarray, k: int, where: SearchFilter, *, exact: bool = False
    ) -> list[Hit]:
        index_type = self._index_type()
        if exact and index_type != "FLAT":
            return self._exact_search(np.asarray(vector, dtype=np.float32).reshape(-1), k, where)
        params = {"ef": self.search_ef(k)} if index_type == "HNSW" else {}
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        found = self._search([query], "vector", "COSINE", k, where, params)
        return [Hit(self._row(hit["entity"]), float(hit["distance"])) for hit in found]

    def _exact_search(self, vector: np.ndarray, k: int, where: SearchFilter) -> list[Hit]:
        """Every row the filter lets through, compared in pages here: a full scan (Milvus cannot
        bypass an index), for measuring the index's recall, not for serving."""
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        best_ids: list[str] = []
        best_scores = np.empty(0, dtype=np.float32)
        iterator = self.client.query_iterator(
            self.name,
            batch_size=EXACT_BATCH,
            filter=filter_expression(where),
            output_fields=["id", "vector"],
            consistency_level=CONSISTENCY,
        )
        try:
            while batch := iterator.next():
                matrix = np.asarray([record["vector"] for record in batch], dtype=np.float32)
                norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)
                best_ids += [record["id"] for record in batch]
                best_scores = np.concatenate([best_scores, (matrix @ vector) / norms])
                if len(best_ids) > 4 * k:
                    keep = np.argsort(-best_scores, kind="stable")[:k]
                    best_ids = [best_ids[i] for i in keep]
                    best_scores = best_scores[keep]
        finally:
            iterator.close()
        order = np.argsort(-best_scores, kind="stable")
        ranked = [(best_ids[i], float(best_scores[i])) for i in order]
        rows: dict[str, ChunkRow] = {}
        for start in range(0, len(ranked), ID_BATCH):
            chunk_ids = [identifier for identifier, _ in ranked[start : start + ID_BATCH]]
            expression = "id in [" + ", ".join(_quote(i) for i in chunk_ids) + "]"
            for record in self.client.query(
                self.name, filter=expression, output_fields=OUTPUT_FIELDS, consistency_level=CONSISTENCY
            ):
                rows[record["id"]] = self._row(record)
        hits = [Hit(rows[identifier], score) for identifier, score in ranked if identifier in rows]
        return [hit for hit in hits if where.matches(hit.row)][:k]

    # --- the ANN vector index -------------------------------------------------------------

    def search_ef(self, k: int, rows: int | None = None) -> int:
        """HNSW's search breadth: `index_options.ef`, or one candidate per ROWS_PER_EF rows when
        that is more (at most MAX_EF), and never below k.

        Why it grows: one HNSW graph loses neighbours as it grows on clustered data. Milvus Lite,
        planted clusters of 20 (384 dims): 10k rows reach recall@10 0.964 with ef 150; 50k rows
        0.795 with ef 150, 0.930 with 300, 0.985 with 600, 0.996 with 1,200, at about the same
        latency (docs/performance.md, "Scale")."""
        rows = self._rows_for_ef() if rows is None else rows
        return max(min(k, MAX_LIMIT), min(MAX_EF, max(self.index_options.ef, math.ceil(rows / ROWS_PER_EF))))

    def _rows_for_ef(self) -> int:
        """The row count `search_ef` grows with, counted again after this store's writes or when
        ROW_COUNT_SECONDS old (writes of other processes show within that): one count(*) round
        trip per search was a third of a hybrid search's time on Milvus Lite."""
        now = time.monotonic()
        if self._row_count is None or now - self._row_count[0] > ROW_COUNT_SECONDS:
            self._row_count = (now, self.count())
        return self._row_count[1]

    def _index_type(self) -> str:
        """The vector field's index type, asked once per store object (every search needs it) and
        again after `ensure_vector_index` changed it."""
        if self._vector_index_type is None:
            described = self.client.describe_index(self.name, VECTOR_INDEX) or {}
            self._vector_index_type = described.get("index_type", "FLAT")
        return self._vector_index_type

    def ensure_vector_index(self, *, force: bool = False, rebuild: bool = False) -> bool:
        """Seal the rows just written (flush), and replace the FLAT index by HNSW once the
        collection holds `index_options.min_rows` rows (or `force`); `rebuild` rebuilds HNSW.

        Milvus indexes each sealed segment itself when it is written, and searches rows not yet
        indexed by brute force, so after the switch nothing more is needed than the flush:
        rows of growing (unsealed) segments are searched by a slow path (Milvus Lite, 20k x 64
        dims: 230 ms a query unflushed, 18 ms flushed). Milvus Lite 3.2 builds HNSW, IVF_FLAT
        and the others for real once segments are sealed (measured: recall@10 0.27 with M 4 and
        ef 10 on random vectors, where FLAT gives 1.0), so Lite and a server get the same index."""
        if "://" not in self.uri:
            self.client.flush(self.name)  # a server seals segments itself (and rate-limits flush)
        self._vector_index_type = None
        index_type = self._index_type()
        if index_type == "HNSW" and not rebuild:
            return False
        if index_type != "HNSW" and not force and not rebuild and self.count() < self.index_options.min_rows:
            return False
        if self.count() == 0:
            return False
        self.client.release_collection(self.name)
        try:
            self.client.drop_index(self.name, VECTOR_INDEX)
            index = self.client.prepare_index_params()
            index.add_index(
                field_name="vector",
                index_type="HNSW",
                metric_type="COSINE",
                params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
            )
            self.client.create_index(self.name, index, sync="://" in self.uri)
        finally:
            self.client.load_collection(self.name)
            self._vector_index_type = None
        return True

    def vector_index_info(self) -> dict:
        described = self.client.describe_index(self.name, VECTOR_INDEX)
        index_type = described.get("index_type", "FLAT")
        if index_type == "FLAT":
            return {"type": "exact", "rows_indexed": 0, "min_rows": self.index_options.min_rows}
        return {
            "type": index_type,
            "rows_indexed": int(described.get("indexed_rows", 0)),
            "rows_unindexed": int(described.get("pending_index_rows", 0)),
            "m": int(described.get("M", HNSW_M)),
            "ef_construction": int(described.get("efConstruction", HNSW_EF_CONSTRUCTION)),
            "search": {"ef": self.search_ef(10)},
            "min_rows": self.index_options.min_rows,
        }

    def lexical_search(self, terms: str, k: int, where: SearchFilter) -> list[Hit]:
        encoded = encode_terms(terms)
        if not encoded:
            return []
        found = self._search([encoded], "sparse", "BM25", k, where)
        # A BM25 score is never negative; Milvus Lite reports it negated (as a distance), a
        # cluster as is, so the magnitude is the score either way.
        return [Hit(self._row(hit["entity"]), abs(float(hit["distance"]))) for hit in found]

    def count(self) -> int:
        result = self.client.query(
            self.name, filter="", output_fields=["count(*)"], consistency_level=CONSISTENCY
        )
        return int(result[0]["count(*)"])

    def _query_all(self, expression: str, fields: list[str]) -> list[dict]:
        records = self.client.query(
            self.name, filter=expression, output_fields=fields, limit=MAX_LIMIT, consistency_level=CONSISTENCY
        )
        if len(records) < MAX_LIMIT:
            return list(records)
        # more than one query returns: page through them (Milvus Lite logs a warning for this)
        iterator = self.client.query_iterator(
            self.name,
            batch_size=WRITE_BATCH,
            filter=expression,
            output_fields=fields,
            consistency_level=CONSISTENCY,
        )
        records = []
        while batch := iterator.next():
            records.extend(batch)
        iterator.close()
        return records

    def rows_of(self, doc_id: str) -> list[ChunkRow]:
        rows = [self._row(r) for r in self._query_all(f"doc_id == {_quote(doc_id)}", OUTPUT_FIELDS)]
        return sorted(rows, key=lambda row: (row.generation, row.chunk_index))

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), ID_BATCH):
            expression = "id in [" + ", ".join(_quote(i) for i in ids[start : start + ID_BATCH]) + "]"
            for record in self.client.query(
                self.name, filter=expression, output_fields=["id", "vector"], consistency_level=CONSISTENCY
            ):
                found[record["id"]] = np.asarray(record["vector"], dtype=np.float32)
        return found

    def destroy(self) -> None:
        """Drop the Milvus collection (a cluster keeps it after the local folder is deleted)."""
        self.client.drop_collection(self.name)
        (self.folder / OWNER_FILE).unlink(missing_ok=True)

    def close(self) -> None:
        self.client.close()
