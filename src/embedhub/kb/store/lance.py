"""LanceDB, embedded: one folder, no server, versioned tables (each `add` is one atomic commit).

Lexical search uses LanceDB's BM25 full-text index over the pre-analysed `terms` column with a
whitespace tokenizer, so the segmentation (jieba for Chinese) is embedhub's. Rows added after the
index was built are still searched (LanceDB scans unindexed fragments); the index is rebuilt
when they are more than a small share of it (see `ensure_text_index`).

Dense search is exact until the table holds `index_options.min_rows` rows; then an IVF_SQ index
is built (see `ensure_vector_index` for when, and for why that type and those parameters).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedhub.kb.store.base import ChunkRow, Hit, SearchFilter, Store

TABLE = "chunks"
TEXT_INDEX = "terms_idx"
REINDEX_MIN_ROWS = 256  # unindexed rows always tolerated before the full-text index is rebuilt
REINDEX_SHARE = 0.05  # ... and beyond that, this share of the indexed rows
REWRITE_BATCH = 4096  # rows whose terms are recomputed per commit when the analyzer changes
VECTOR_INDEX = "vector_idx"
VECTOR_INDEX_FILE = "vector-index.json"  # how and when the ANN index was last trained
VECTOR_INDEX_TYPE = "IVF_SQ"
PARTITION_ROWS = 5_000  # rows per IVF partition at training
REFINE_FACTOR = 3  # k * 3 best candidates are re-scored with the full vectors
APPEND_MIN_ROWS = 1024  # unindexed rows always tolerated before they are added to the index
APPEND_SHARE = 0.10  # ... and beyond that, this share of the indexed rows
RETRAIN_GROWTH = 1.5  # retrain (new partitions) once the table is this many times its size at training


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _like_pattern(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def where_clause(where: SearchFilter) -> str | None:
    """SQL prefilter for LanceDB; `SearchFilter.matches` re-checks glob semantics exactly."""
    parts = []
    if where.path_glob:
        pattern = _like_pattern(where.path_glob)
        if not pattern.startswith("%"):
            pattern = "%" + pattern
        parts.append(f"path LIKE {_quote(pattern)}")
    if where.file_types:
        parts.append("file_type IN (" + ", ".join(_quote(t) for t in where.file_types) + ")")
    if where.page_min is not None:
        parts.append(f"page_end >= {int(where.page_min)}")
    if where.page_max is not None:
        parts.append(f"page_start <= {int(where.page_max)}")
    return " AND ".join(parts) or None


class LanceStore(Store):
    def __init__(self, folder: Path, dimensions: int) -> None:
        import lancedb

        self.folder = folder
        self.dimensions = dimensions
        self.db = lancedb.connect(str(folder))
        self.schema = pa.schema(
            [
                ("id", pa.string()),
                ("doc_id", pa.string()),
                ("generation", pa.int64()),
                ("chunk_index", pa.int32()),
                ("path", pa.string()),
                ("file_type", pa.string()),
                ("text", pa.string()),
                ("terms", pa.string()),
                ("char_start", pa.int64()),
                ("char_end", pa.int64()),
                ("page_start", pa.int32()),
                ("page_end", pa.int32()),
                ("heading_path", pa.list_(pa.string())),
                ("content_hash", pa.string()),
                ("vector", pa.list_(pa.float32(), dimensions)),
            ]
        )
        if TABLE in self.db.table_names():
            self.table = self.db.open_table(TABLE)
        else:
            self.table = self.db.create_table(TABLE, schema=self.schema)
        self._columns = [name for name in self.schema.names if name != "vector"]
        self._has_index = any(index.name == TEXT_INDEX for index in self.table.list_indices())
        self._index_state_path = folder / VECTOR_INDEX_FILE

    def add(self, rows: Sequence[ChunkRow], vectors: np.ndarray) -> None:
        if not rows:
            return
        columns = {name: [] for name in self.schema.names if name != "vector"}
        for row in rows:
            for name in columns:
                value = getattr(row, name)
                columns[name].append(list(value) if name == "heading_path" else value)
        arrays = [pa.array(columns[name], type=self.schema.field(name).type) for name in columns]
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, self.dimensions))
        self.table.add(pa.Table.from_arrays(arrays, schema=self.schema))

    def delete_documents(self, doc_ids, *, except_generation=None, only_generation=None) -> None:
        if not doc_ids:
            return
        for start in range(0, len(doc_ids), 500):
            clause = "doc_id IN (" + ", ".join(_quote(d) for d in doc_ids[start : start + 500]) + ")"
            if except_generation is not None:
                clause += f" AND generation != {int(except_generation)}"
            if only_generation is not None:
                clause += f" AND generation = {int(only_generation)}"
            self.table.delete(clause)

    def _rows(self, records: list[dict], score_key: str, transform) -> list[Hit]:
        hits = []
        for record in records:
            row = ChunkRow(
                **{
                    name: record[name] for name in self.schema.names if name not in ("vector", "heading_path")
                },
                heading_path=tuple(record["heading_path"] or ()),
            )
            hits.append(Hit(row, float(transform(record[score_key]))))
        return hits

    def dense_search(
        self, vector: np.ndarray, k: int, where: SearchFilter, *, exact: bool = False
    ) -> list[Hit]:
        if self.count() == 0:
            return []
        query = self.table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
        query = query.distance_type("cosine").limit(k)
        state = self._index_state()
        if exact or state is None:
            query = query.bypass_vector_index()
        else:
            query = query.nprobes(state["num_partitions"]).refine_factor(REFINE_FACTOR)
            if "HNSW" in state["type"]:  # an index of an earlier version, until it is retrained
                query = query.ef(max(self.index_options.ef, k))
        clause = where_clause(where)
        if clause:
            query = query.where(clause, prefilter=True)
        records = query.select([*self._columns, "_distance"]).to_list()
        return self._rows(records, "_distance", lambda distance: 1.0 - distance)

    # --- the ANN vector index -------------------------------------------------------------

    def _index_state(self) -> dict | None:
        """The last training's record, None when there is no vector index."""
        if not self._index_state_path.exists():
            return None
        return json.loads(self._index_state_path.read_text())

    def ensure_vector_index(self, *, force: bool = False, rebuild: bool = False) -> bool:
        """Build, extend or retrain the IVF_SQ index; called after ingests commit.

        When: built once the table holds `index_options.min_rows` rows (or `force`). Rows added
        later are searched anyway (LanceDB scans unindexed fragments exactly and merges them), so
        they are folded into the index (`optimize`: no retraining) only once they exceed
        max(APPEND_MIN_ROWS, APPEND_SHARE of the indexed rows); the index is retrained (new
        partitions, new quantiser) when the table has grown RETRAIN_GROWTH times since the last
        training, with `rebuild`, or when the index is of another type (an earlier version's).
        Deleted rows are never returned (LanceDB's deletion files apply to indexed rows too).

        Why this type and these numbers (docs/performance.md, "Scale"): on planted clusters IVF
        partitions cut neighbourhoods badly (recall@10 0.70 with half of them probed), so every
        partition is probed, and then the cheapest thing to probe is a flat list of 8-bit codes
        with the best k * REFINE_FACTOR re-scored from the full vectors: recall 1.000 at 100k and
        1M rows, dense search 6 ms at 100k and 60 ms at 1M (384 dims, two cores), index built in
        4 s and 19 s. The graph index it replaced (IVF_HNSW_SQ, partitions of 5k, ef 150) was
        slower at every size (10 ms, 360 ms), less exact (0.984, 0.971) and took 10x longer to
        build; graphs big enough to probe fewer partitions (m 32, partitions of 25k) reached 0.986
        at 81 ms in 633 s of building. IVF_PQ / IVF_RQ codes lose too much on such data (0.80 and
        0.75 at refine 20-30)."""
        rows = self.count()
        state = self._index_state()
        if rows == 0:
            return False
        if state is None:
            if not force and rows < self.index_options.min_rows:
                return False
            return self._train_vector_index(rows)
        outdated = state.get("type") != VECTOR_INDEX_TYPE
        if rebuild or outdated or rows >= RETRAIN_GROWTH * state["rows_at_training"]:
            return self._train_vector_index(rows)
        stats = self.table.index_stats(VECTOR_INDEX)
        if stats is None:  # the index is gone (a table restored from elsewhere): train again
            return self._train_vector_index(rows)
        if stats.num_unindexed_rows <= max(APPEND_MIN_ROWS, APPEND_SHARE * stats.num_indexed_rows):
            return False
        self.table.optimize()
        return True

    def _train_vector_index(self, rows: int) -> bool:
        partitions = max(1, math.ceil(rows / PARTITION_ROWS))
        started = time.perf_counter()
        self.table.create_index(
            metric="cosine",
            vector_column_name="vector",
            index_type=VECTOR_INDEX_TYPE,
            num_partitions=partitions,
            replace=True,
            name=VECTOR_INDEX,
        )
        state = {
            "type": VECTOR_INDEX_TYPE,
            "num_partitions": partitions,
            "rows_at_training": rows,
            "trained_at": time.time(),
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        temporary = self._index_state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self._index_state_path)
        return True

    def vector_index_info(self) -> dict:
        state = self._index_state()
        if state is None:
            return {"type": "exact", "rows_indexed": 0, "min_rows": self.index_options.min_rows}
        stats = self.table.index_stats(VECTOR_INDEX)
        return {
            **state,
            "rows_indexed": stats.num_indexed_rows if stats else 0,
            "rows_unindexed": stats.num_unindexed_rows if stats else self.count(),
            "search": {"nprobes": state["num_partitions"], "refine_factor": REFINE_FACTOR},
            "min_rows": self.index_options.min_rows,
        }

    def ensure_text_index(self, force: bool = False) -> None:
        """Build the BM25 index, or rebuild it once the rows added since the last build are more
        than a small share of it.

        Why a share: LanceDB scores rows added after the build by scanning them, with statistics
        (document count, term frequencies) that do not match the index's. Measured: 1,000 rows
        added to an index of 2,000 move BM25 scores by 0.5-3% and change one of the top 10."""
        from lancedb.index import FTS

        rows = self.count()
        if rows == 0:
            return
        if not force and self._has_index:
            stats = self.table.index_stats(TEXT_INDEX)
            if stats is not None and stats.num_unindexed_rows <= max(
                REINDEX_MIN_ROWS, REINDEX_SHARE * stats.num_indexed_rows
            ):
                return
        self.table.create_index(
            "terms",
            replace=True,
            name=TEXT_INDEX,
            config=FTS(
                base_tokenizer="whitespace",
                lower_case=False,
                stem=False,
                remove_stop_words=False,
                ascii_folding=False,
                with_position=False,
            ),
        )
        self._has_index = True

    def rewrite_terms(self, terms_of) -> int:
        rewritten = 0
        batches = (
            self.table.search().select(["id", "text", "heading_path"]).limit(None).to_batches(REWRITE_BATCH)
        )
        for batch in batches:
            records = batch.to_pylist()
            if not records:
                continue
            terms = [terms_of(record["text"], tuple(record["heading_path"] or ())) for record in records]
            update = pa.table({"id": [record["id"] for record in records], "terms": terms})
            self.table.merge_insert("id").when_matched_update_all().execute(update)
            rewritten += len(records)
        self.ensure_text_index(force=True)
        return rewritten

    def lexical_search(self, terms: str, k: int, where: SearchFilter) -> list[Hit]:
        if not terms.strip() or self.count() == 0:
            return []
        self.ensure_text_index()
        query = self.table.search(terms, query_type="fts", fts_columns="terms").limit(k)
        clause = where_clause(where)
        if clause:
            query = query.where(clause, prefilter=True)
        records = query.select([*self._columns, "_score"]).to_list()
        return self._rows(records, "_score", float)

    def count(self) -> int:
        return self.table.count_rows()

    def rows_of(self, doc_id: str) -> list[ChunkRow]:
        records = (
            self.table.search()
            .where(f"doc_id = {_quote(doc_id)}")
            .select(self._columns)
            .limit(1_000_000)
            .to_list()
        )
        rows = [
            ChunkRow(
                **{name: r[name] for name in self.schema.names if name not in ("vector", "heading_path")},
                heading_path=tuple(r["heading_path"] or ()),
            )
            for r in records
        ]
        return sorted(rows, key=lambda row: (row.generation, row.chunk_index))

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            clause = "id IN (" + ", ".join(_quote(i) for i in ids[start : start + 500]) + ")"
            for record in (
                self.table.search().where(clause).select(["id", "vector"]).limit(1_000_000).to_list()
            ):
                found[record["id"]] = np.asarray(record["vector"], dtype=np.float32)
        return found
