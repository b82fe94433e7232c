"""`embedhub bench-scale`: the knowledge base's stores at 10k, 100k and 1M chunks.

Each (store, size) cell runs in its own child process (a clean peak-memory figure, and a time
budget that can stop it): it fills a collection with synthetic chunks through the real store API
(`Store.add` in batches, no model), builds the ANN index and the full-text index, then searches
through `kb.search.Searcher` as users do, with a stand-in encoder that returns each query's planted
vector (so no model runs and the vector is fixed).

The data has a known neighbour structure: unit vectors in clusters of `CLUSTER_ROWS` around random
centres (dimension `--dims`), and queries that are noisy copies of stored vectors. The true top 10
of every query is computed here by brute force over the same generated vectors; recall@10 of the
store's dense search (through the index) and of its exact search (`exact=True`) are measured
against it. Chunk texts are phrases of words drawn from a Zipf vocabulary; each query's source chunk also
carries two words found nowhere else, and the query text is those two plus common words, so the
lexical side has a right answer too.

Per cell: ingest rows/s (time inside `Store.add` only), disk size, vector-index and text-index
build seconds, p50/p99 latency of hybrid, dense (ANN) and dense exact searches at k=10, recall@10,
and peak RSS of the child and the processes it started (Milvus Lite runs its own server).

Per store a time budget (`--budget` seconds): a size whose estimated time (from the previous size,
scaled by rows) would not fit in what is left is skipped with the estimate; a cell still running
when the budget runs out is stopped and reports the rows it reached.

`--remote` measures the remote encoder backend instead (see `run_remote`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

STORES = ("lancedb", "milvus")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
CLUSTER_ROWS = 20  # stored vectors per planted cluster
CLUSTER_NOISE = 0.6  # per-dimension noise around a cluster centre (centres are standard normal)
QUERY_NOISE = 0.3  # per-dimension noise of a query around the stored vector it copies
CHUNKS_PER_DOCUMENT = 20
WORDS_PER_CHUNK = 40
PHRASE_WORDS = 8  # chunk texts are joined from a pool of Zipf-drawn phrases (1M texts in seconds)
PHRASES = 65_536
VOCABULARY = 50_000  # Zipf-distributed words of the chunk texts
ZIPF_EXPONENT = 1.2
K = 10
MODEL_NAME = "bench-planted-vectors"
PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"


@dataclass
class ScaleOptions:
    sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    stores: list[str] = field(default_factory=lambda: list(STORES))
    dims: int = 384
    queries: int = 100  # hybrid and dense (ANN) latency and recall
    exact_queries: int = 20  # exact search is slow at 1M: fewer queries ...
    exact_seconds: float = 60.0  # ... and none started after this many seconds of them (at least one)
    batch_rows: int = 5000  # rows per Store.add
    budget: float = 900.0  # seconds per store ...
    budgets: dict[str, float] = field(default_factory=dict)  # ... unless given for that store here
    seed: int = 0
    work_dir: Path | None = None  # where the collections are written (deleted after each cell)
    command: str = ""


def word(index: int) -> str:
    """A lowercase word for a vocabulary index (letters only, so every analyzer keeps it whole)."""
    letters = []
    index += 26 * 26  # at least three letters
    while index:
        index, digit = divmod(index, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(reversed(letters))


class PlantedData:
    """The synthetic collection of `rows` chunks, generated batch by batch (never all at once), and
    the queries, each made when its source row is generated."""

    def __init__(self, rows: int, dims: int, queries: int, seed: int) -> None:
        self.rows, self.dims = rows, dims
        rng = np.random.default_rng(seed)
        clusters = math.ceil(rows / CLUSTER_ROWS)
        self.centres = rng.standard_normal((clusters, dims)).astype(np.float32)
        self.seed = seed
        self.sources = np.sort(rng.choice(rows, size=min(queries, rows), replace=False))
        self.query_vectors = np.zeros((len(self.sources), dims), dtype=np.float32)
        self.query_texts = [""] * len(self.sources)
        self._source_position = {int(row): position for position, row in enumerate(self.sources)}
        self._query_rng = np.random.default_rng(seed + 1)
        self._words = [word(index) for index in range(VOCABULARY)]
        drawn = np.minimum(rng.zipf(ZIPF_EXPONENT, size=(PHRASES, PHRASE_WORDS)), VOCABULARY) - 1
        self._phrases = [" ".join(self._words[index] for index in line) for line in drawn]

    def planted_words(self, position: int) -> list[str]:
        return [word(VOCABULARY + 2 * position), word(VOCABULARY + 2 * position + 1)]

    def batch(self, start: int, stop: int):
        """Rows [start, stop): (ChunkRow list, vectors); also makes the queries whose source rows
        are in it. The same (seed, start) always gives the same vectors."""
        from embedhub.kb.store import ChunkRow

        rng = np.random.default_rng([self.seed, start])
        count = stop - start
        vectors = self.centres[np.arange(start, stop) // CLUSTER_ROWS] + CLUSTER_NOISE * rng.standard_normal(
            (count, self.dims), dtype=np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        drawn = rng.integers(0, PHRASES, size=(count, WORDS_PER_CHUNK // PHRASE_WORDS))
        texts = [" ".join(self._phrases[index] for index in line) for line in drawn]
        for offset in range(count):
            position = self._source_position.get(start + offset)
            if position is None:
                continue
            planted = self.planted_words(position)
            texts[offset] += " " + " ".join(planted)
            noisy = vectors[offset] + QUERY_NOISE * self._query_rng.standard_normal(self.dims).astype(
                np.float32
            )
            self.query_vectors[position] = noisy / np.linalg.norm(noisy)
            common = " ".join(texts[offset].split()[:3])
            self.query_texts[position] = f"{planted[0]} {common} {planted[1]}"
        rows = []
        for offset, text in enumerate(texts):
            number = start + offset
            document = number // CHUNKS_PER_DOCUMENT
            pdf = document % 4 == 0
            page = number % CHUNKS_PER_DOCUMENT + 1 if pdf else None
            rows.append(
                ChunkRow(
                    id=f"c{number}",
                    doc_id=f"doc{document}",
                    generation=1,
                    chunk_index=number % CHUNKS_PER_DOCUMENT,
                    path=f"/bench/part{document % 100}/doc{document}.{'pdf' if pdf else 'md'}",
                    file_type="pdf" if pdf else "md",
                    text=text,
                    terms=text,
                    char_start=0,
                    char_end=len(text),
                    page_start=page,
                    page_end=page,
                    heading_path=(),
                    content_hash=f"h{number}",
                )
            )
        return rows, vectors


def exact_truth_pass(data: PlantedData, rows: int, batch_rows: int) -> np.ndarray:
    """The true top 10 of every query over the first `rows` rows, regenerating the vectors (the
    queries only exist once their source rows were generated, so truth needs a second pass)."""
    best_scores = np.full((len(data.sources), K), -np.inf, dtype=np.float32)
    best_rows = np.full((len(data.sources), K), -1, dtype=np.int64)
    for start in range(0, rows, batch_rows):
        stop = min(rows, start + batch_rows)
        rng = np.random.default_rng([data.seed, start])
        vectors = data.centres[np.arange(start, stop) // CLUSTER_ROWS] + CLUSTER_NOISE * rng.standard_normal(
            (stop - start, data.dims), dtype=np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = data.query_vectors @ vectors.T
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_rows = np.concatenate(
            [best_rows, np.broadcast_to(np.arange(start, stop), scores.shape)], axis=1
        )
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :K]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
    return best_rows


class PlantedQueryEncoder:
    """Stands in for the collection's model in `Searcher`: a query text's planted vector."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.spec = SimpleNamespace(name=MODEL_NAME, supports_instructions=False)
        self.native_dims = vectors.shape[1]
        self._vectors = dict(zip(texts, vectors, strict=True))

    def encode(self, texts, **_options) -> SimpleNamespace:
        return SimpleNamespace(vectors=np.stack([self._vectors[text] for text in texts]))


class PeakMemory:
    """Peak RSS of this process plus the processes it started (sampled every 0.2 s)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> int:
        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except Exception:  # a child that just ended
                continue
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def percentiles(milliseconds: list[float]) -> dict[str, float | None]:
    if not milliseconds:
        return {"p50_ms": None, "p99_ms": None}
    values = np.asarray(milliseconds)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
    }


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(ids) & set(truth[i].tolist())) / K for i, ids in enumerate(found)]))


def run_cell(store_name: str, rows: int, options: ScaleOptions, folder: Path) -> dict[str, Any]:
    """Fill, index and search one collection of `rows` chunks in `folder` (this process)."""
    from embedhub.kb.collection import Collection, CollectionConfig
    from embedhub.kb.search import Searcher
    from embedhub.kb.store import SearchFilter, VectorIndexOptions

    folder.mkdir(parents=True, exist_ok=True)
    memory = PeakMemory()
    progress_path = folder / PROGRESS_FILE
    config = CollectionConfig(
        name="scale", model=MODEL_NAME, model_reference=MODEL_NAME, dimensions=options.dims,
        native_dimensions=options.dims, instruction=None, store=store_name, lexical_language="none",
    )  # fmt: skip
    collection = Collection(folder, config, index_options=VectorIndexOptions())
    store = collection.store
    data = PlantedData(rows, options.dims, options.queries, options.seed)
    add_seconds = 0.0
    started = time.perf_counter()
    for start in range(0, rows, options.batch_rows):
        stop = min(rows, start + options.batch_rows)
        chunk_rows, vectors = data.batch(start, stop)
        began = time.perf_counter()
        store.add(chunk_rows, vectors)
        add_seconds += time.perf_counter() - began
        progress_path.write_text(json.dumps({"rows": stop, "add_seconds": add_seconds}))
    documents = math.ceil(rows / CHUNKS_PER_DOCUMENT)
    collection.manifest.commit(
        1,
        (
            {"doc_id": f"doc{d}", "path": f"/bench/part{d % 100}/doc{d}", "file_type": "md",
             "file_hash": f"f{d}", "size": 0, "chunks": CHUNKS_PER_DOCUMENT, "tokens": 0}
            for d in range(documents)
        ),
    )  # fmt: skip
    fill_seconds = time.perf_counter() - started
    truth = exact_truth_pass(data, rows, options.batch_rows)

    began = time.perf_counter()
    collection.maintain_index(force=True)  # every size gets the index, to compare it with exact
    vector_index_seconds = time.perf_counter() - began
    began = time.perf_counter()
    if hasattr(store, "ensure_text_index"):
        store.ensure_text_index(force=True)  # LanceDB builds it on first use otherwise
    text_index_seconds = time.perf_counter() - began

    searcher = Searcher(collection, PlantedQueryEncoder(data.query_texts, data.query_vectors))
    searcher.search(data.query_texts[0], k=K)  # warm-up: caches, index files opened
    latency: dict[str, list[float]] = {"hybrid": [], "dense": [], "dense_exact": []}
    found_dense: list[list[int]] = []
    source_in_hybrid = 0
    for position, text in enumerate(data.query_texts):
        began = time.perf_counter()
        hybrid = searcher.search(text, k=K, mode="hybrid")
        latency["hybrid"].append((time.perf_counter() - began) * 1000)
        source_in_hybrid += any(r.chunk_id == f"c{data.sources[position]}" for r in hybrid)
        began = time.perf_counter()
        searcher.search(text, k=K, mode="dense")
        latency["dense"].append((time.perf_counter() - began) * 1000)
        hits = store.dense_search(data.query_vectors[position], K, SearchFilter())
        found_dense.append([int(hit.row.id[1:]) for hit in hits])
    found_exact: list[list[int]] = []
    exact_started = time.perf_counter()
    for position, text in enumerate(data.query_texts[: options.exact_queries]):
        if position and time.perf_counter() - exact_started > options.exact_seconds:
            break
        began = time.perf_counter()
        exact = searcher.search(text, k=K, mode="dense", exact=True)
        latency["dense_exact"].append((time.perf_counter() - began) * 1000)
        found_exact.append([int(result.chunk_id[1:]) for result in exact])
    exact_seconds = time.perf_counter() - exact_started
    index_info = store.vector_index_info()
    collection.close()
    disk = folder_bytes(folder)
    return {
        "store": store_name,
        "rows": rows,
        "status": "ok",
        "ingest_rows_per_second": round(rows / add_seconds, 1) if add_seconds else None,
        "add_seconds": round(add_seconds, 3),
        "fill_seconds": round(fill_seconds, 3),
        "disk_mb": round(disk / 2**20, 1),
        "vector_index_seconds": round(vector_index_seconds, 3),
        "text_index_seconds": round(text_index_seconds, 3),
        "vector_index": index_info,
        "hybrid": percentiles(latency["hybrid"]),
        "dense": percentiles(latency["dense"]),
        "dense_exact": percentiles(latency["dense_exact"]),
        "recall_at_10": round(recall(found_dense, truth), 4),
        "exact_recall_at_10": round(recall(found_exact, truth[: len(found_exact)]), 4),
        "hybrid_source_at_10": round(source_in_hybrid / len(data.query_texts), 4),
        "queries": len(data.query_texts),
        "exact_queries": len(found_exact),
        "exact_search_seconds": round(exact_seconds, 3),
        "peak_rss_mb": round(memory.stop() / 2**20, 1),
        "cell_seconds": round(time.perf_counter() - started, 3),
    }


def _cell_command(store_name: str, rows: int, options: ScaleOptions, folder: Path) -> list[str]:
    arguments = {"store": store_name, "rows": rows, "folder": str(folder),
                 "options": {**asdict(options), "work_dir": None}}  # fmt: skip
    return [sys.executable, "-m", "embedhub.bench.scale", json.dumps(arguments)]


def _child_environment() -> dict[str, str]:
    source = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": source + (os.pathsep + path if path else "")}


def run_child_cell(store_name: str, rows: int, options: ScaleOptions, work: Path, timeout: float) -> dict:
    """One cell in a child process; stopped after `timeout` seconds (then: the rows it reached)."""
    folder = work / f"{store_name}-{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = work / f"{store_name}-{rows}.log"
    started = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(
            _cell_command(store_name, rows, options, folder), stdout=handle, stderr=subprocess.STDOUT,
            env=_child_environment(), start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
    seconds = round(time.perf_counter() - started, 1)
    result_path = folder / RESULT_FILE
    try:
        if result_path.exists():
            return json.loads(result_path.read_text())
        progress = folder / PROGRESS_FILE
        reached = json.loads(progress.read_text()) if progress.exists() else {"rows": 0, "add_seconds": 0}
        if process.returncode == -9:
            rate = reached["rows"] / reached["add_seconds"] if reached["add_seconds"] else None
            return {"store": store_name, "rows": rows, "status": "stopped", "cell_seconds": seconds,
                    "reason": f"time budget: stopped after {seconds} s with {reached['rows']:,} rows written",
                    "rows_reached": reached["rows"],
                    "ingest_rows_per_second": round(rate, 1) if rate else None}  # fmt: skip
        tail = log.read_text(errors="replace")[-1500:]
        return {"store": store_name, "rows": rows, "status": "failed", "cell_seconds": seconds,
                "reason": f"exit code {process.returncode}: {tail}"}  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def estimate_seconds(previous: dict, rows: int, options: ScaleOptions) -> float:
    """A cell's time from the previous size's: everything but exact search scaled by rows (index
    builds grow a little faster than linearly: n log n); exact search, one query scaled by rows,
    for as many queries as `exact_seconds` lets start."""
    scale = rows / previous["rows"]
    growth = scale * math.log(rows) / math.log(previous["rows"])
    exact_total = previous.get("exact_search_seconds", 0.0)
    per_query = exact_total / max(1, previous.get("exact_queries", 1)) * scale
    exact = min(options.exact_queries * per_query, options.exact_seconds + per_query)
    return (previous["cell_seconds"] - exact_total) * growth + exact


def parse_budgets(value: str) -> tuple[float, dict[str, float]]:
    """'900' (every store) or 'lancedb=1200,milvus=600' (per store; others get 900)."""
    from embedhub.errors import ConfigurationError

    default, budgets = 900.0, {}
    try:
        for part in (piece.strip() for piece in value.split(",") if piece.strip()):
            if "=" in part:
                store_name, seconds = part.split("=", 1)
                if store_name.strip() not in STORES:
                    raise ValueError(store_name)
                budgets[store_name.strip()] = float(seconds)
            else:
                default = float(part)
    except ValueError:
        raise ConfigurationError(
            f"--budget takes seconds (900) or STORE=SECONDS pairs (lancedb=1200,milvus=600), not {value!r}"
        ) from None
    return default, budgets


def run_scale(options: ScaleOptions, say=print) -> dict[str, Any]:
    for name in options.stores:
        if name not in STORES:
            from embedhub.errors import ConfigurationError

            raise ConfigurationError(
                f"unknown store {name!r} for bench-scale; choose from: {', '.join(STORES)}"
            )
    work = Path(options.work_dir or tempfile.mkdtemp(prefix="embedhub-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {**asdict(options), "work_dir": str(options.work_dir) if options.work_dir else None},
        "cells": [],
    }
    try:
        for store_name in options.stores:
            spent, previous = 0.0, None
            budget = options.budgets.get(store_name, options.budget)
            for rows in sorted(options.sizes):
                left = budget - spent
                if previous is not None and previous["status"] == "ok":
                    estimate = estimate_seconds(previous, rows, options)
                    if estimate > left:
                        reason = (
                            f"estimated {estimate:,.0f} s (from {previous['rows']:,} rows in "
                            f"{previous['cell_seconds']:,.0f} s) > {left:,.0f} s left of the budget"
                        )
                        cell = {"store": store_name, "rows": rows, "status": "skipped",
                                "estimated_seconds": round(estimate), "reason": reason}  # fmt: skip
                        report["cells"].append(cell)
                        say(f"{store_name} {rows:,}: skipped, {cell['reason']}")
                        continue
                elif previous is not None:
                    report["cells"].append({"store": store_name, "rows": rows, "status": "skipped",
                                            "reason": "a smaller size did not finish"})  # fmt: skip
                    continue
                say(f"{store_name} {rows:,}: running ({left:,.0f} s of budget left)")
                cell = run_child_cell(store_name, rows, options, work, left)
                spent += cell.get("cell_seconds") or 0.0
                report["cells"].append(cell)
                say(f"{store_name} {rows:,}: {cell['status']} in {cell.get('cell_seconds')} s")
                previous = cell
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def _value(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    options = report["options"]
    lines = [
        f"Synthetic chunks: {options['dims']} dims, clusters of {CLUSTER_ROWS}, {options['queries']} "
        f"queries (noisy copies of stored vectors; exact search on up to {options['exact_queries']}, "
        f"as many as start within {options['exact_seconds']:g} s: the count in brackets), "
        f"k={K}; {report['machine']['cpus']} CPUs, load average before {report['machine']['load_average']}.",
        "",
        "| store | chunks | ingest rows/s | disk MB | vector index | index build s | text index s "
        "| hybrid p50/p99 ms | dense p50/p99 ms | exact p50/p99 ms (queries) | recall@10 | peak RSS MB |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for cell in report["cells"]:
        if cell["status"] != "ok":
            notes.append(f"- {cell['store']} {cell['rows']:,}: {cell['status']}: {cell['reason']}")
            continue
        index = cell["vector_index"]
        lines.append(
            f"| {cell['store']} | {cell['rows']:,} | {_value(cell['ingest_rows_per_second'], 0)} "
            f"| {_value(cell['disk_mb'])} | {index.get('type')} | {_value(cell['vector_index_seconds'])} "
            f"| {_value(cell['text_index_seconds'])} "
            f"| {_value(cell['hybrid']['p50_ms'])} / {_value(cell['hybrid']['p99_ms'])} "
            f"| {_value(cell['dense']['p50_ms'])} / {_value(cell['dense']['p99_ms'])} "
            f"| {_value(cell['dense_exact']['p50_ms'])} / {_value(cell['dense_exact']['p99_ms'])} "
            f"({cell['exact_queries']}) "
            f"| {cell['recall_at_10']:.3f} | {_value(cell['peak_rss_mb'], 0)} |"
        )
    return "\n".join(lines + (["", *notes] if notes else []))


def plot(report: dict[str, Any], path: Path) -> str:
    """Latency, ingest speed and recall against collection size, one line per store."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return f"no plot: matplotlib is not installed (pip install matplotlib), {path} not written"
    cells = [cell for cell in report["cells"] if cell["status"] == "ok"]
    figure, axes = pyplot.subplots(1, 3, figsize=(15, 4))
    for index, store_name in enumerate(dict.fromkeys(cell["store"] for cell in cells)):
        mine = sorted((cell for cell in cells if cell["store"] == store_name), key=lambda cell: cell["rows"])
        sizes = [cell["rows"] for cell in mine]
        colour = f"C{index}"
        for key, style in (("hybrid", "-"), ("dense", "--"), ("dense_exact", ":")):
            axes[0].plot(sizes, [cell[key]["p50_ms"] for cell in mine], style, color=colour, marker="o",
                         label=f"{store_name} {key} p50")  # fmt: skip
        axes[1].plot(sizes, [cell["ingest_rows_per_second"] for cell in mine], color=colour, marker="o",
                     label=store_name)  # fmt: skip
        axes[2].plot(
            sizes, [cell["recall_at_10"] for cell in mine], color=colour, marker="o", label=store_name
        )
    axes[0].set(
        xscale="log", yscale="log", xlabel="chunks", ylabel="ms per search (k=10)", title="Search latency"
    )
    axes[1].set(xscale="log", xlabel="chunks", ylabel="rows/s into Store.add", title="Ingest")
    axes[2].set(
        xscale="log", xlabel="chunks", ylabel="recall@10 (ANN vs exact)", title="Recall", ylim=(0, 1.02)
    )
    axes[2].axhline(0.95, color="black", linewidth=0.8)
    for axis in axes:
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return f"plot written to {path}"


@dataclass
class RemoteOptions:
    model: str = "all-MiniLM-L6-v2"
    endpoint_counts: list[int] = field(default_factory=lambda: [1, 2, 4])
    texts: int = 512
    words: int = 60  # words per text (one chunk each when ingested)
    threads: int = 1  # torch threads per endpoint: N endpoints on one machine stand for N machines
    client_batch: int = 32
    rounds: int = 3  # plain client and `kb add` alternate this many times (the machine drifts)
    command: str = ""


@contextmanager
def embedhub_endpoints(count: int, model: str, threads: int, home: Path, cpus: set[int] | None = None):
    """`count` `embedhub serve` processes on 127.0.0.1 (free ports), embedding cache off; with
    `cpus`, each may run on those CPUs only."""
    processes, urls = [], []
    try:
        for index in range(count):
            port = _free_port()
            environment = {**_child_environment(), "EMBEDHUB_HOME": str(home / f"endpoint{index}"),
                           "EMBEDHUB_THREADS": str(threads), "EMBEDHUB_CACHE_MB": "0"}  # fmt: skip
            command = [sys.executable, "-c", "from embedhub.cli import app; app()", "serve", "--model", model,
                       "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
            pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
            processes.append(
                subprocess.Popen(
                    command,
                    env=environment,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    preexec_fn=pin,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for process, url in zip(processes, urls, strict=True):
            wait_ready(process, url)
        yield urls
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stderr.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(process: subprocess.Popen, url: str, timeout: float = 300.0) -> None:
    """Wait for a started `embedhub serve` to answer /ready; its stderr tail if it exits first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedhub serve exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"embedhub serve at {url} was not ready within {timeout:.0f} s")


def remote_texts(count: int, words: int) -> list[str]:
    from embedhub.bench.texts import synthetic_documents

    return [" ".join(text.split()[:words]) for text in synthetic_documents(count, seed=7)]


def direct_throughput(url: str, model: str, texts: list[str], batch: int, concurrency: int) -> float:
    """Texts/s a plain client gets from one endpoint: batches of `batch`, `concurrency` in flight
    (the remote backend's default per endpoint)."""
    import concurrent.futures

    import httpx

    batches = [texts[start : start + batch] for start in range(0, len(texts), batch)]
    with httpx.Client(timeout=600) as client:

        def send(inputs: list[str]) -> None:
            response = client.post(url + "/v1/embeddings", json={"model": model, "input": inputs})
            response.raise_for_status()

        send(batches[0])  # warm-up
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, batches))
        return len(texts) / (time.perf_counter() - started)


def run_remote(options: RemoteOptions, say=print) -> dict[str, Any]:
    """Throughput of the remote backend over 1, 2, 4 ... local embedhub endpoints (each limited to
    `threads` torch threads, standing for one machine each), as a ratio to one endpoint; and a
    knowledge-base ingest through the remote backend against what one endpoint gives a plain
    client on the same texts (the target: within 10%), twice: with the endpoint and the client
    sharing the machine's cores, and pinned to one core each (an endpoint on its own machine, as
    a GPU server would be: the ingest's own parsing and writing then do not slow the endpoint)."""
    from embedhub.config import Settings
    from embedhub.models.backends import load_encoder
    from embedhub.models.loading import resolve

    texts = remote_texts(options.texts, options.words)
    home = Path(tempfile.mkdtemp(prefix="embedhub-remote-"))
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": asdict(options),
        "rows": [],
    }
    try:
        name = resolve(options.model, Settings(home=home)).spec.name
        with embedhub_endpoints(max(options.endpoint_counts), options.model, options.threads, home) as urls:
            settings = Settings(home=home / "client", backend="auto", cache_mb=0)
            direct = direct_throughput(
                urls[0], name, texts, options.client_batch, settings.remote_concurrency
            )
            report["direct_texts_per_second"] = round(direct, 2)
            say(f"one endpoint, plain client: {direct:.1f} texts/s")
            baseline = None
            for count in sorted(options.endpoint_counts):
                encoder = load_encoder(f"remote:{','.join(urls[:count])}#{name}", settings)
                try:
                    encoder.encode(texts[: options.client_batch], truncate=True)  # warm-up
                    started = time.perf_counter()
                    encoder.encode(texts, truncate=True)
                    speed = len(texts) / (time.perf_counter() - started)
                finally:
                    encoder.close()
                baseline = baseline or speed
                report["rows"].append({"endpoints": count, "texts_per_second": round(speed, 2),
                                       "ratio_to_one": round(speed / baseline, 3)})  # fmt: skip
                say(f"{count} endpoint(s) through the remote backend: {speed:.1f} texts/s")
            folder = home / "documents"
            folder.mkdir()
            for index, text in enumerate(texts):
                (folder / f"text{index:05d}.txt").write_text(text + "\n", encoding="utf-8")
            shared = ingest_rounds(urls[0], name, texts, folder, settings, options, direct, say)
            report["direct_rounds"] = shared.pop("direct_rounds")
            report["direct_texts_per_second"] = shared.pop("direct_texts_per_second")
            report["ingest"] = shared
        pinned = one_core_each()
        if pinned:
            endpoint_cpu, client_cpu = pinned
            say(f"one core each: the endpoint on CPU {endpoint_cpu}, this client on CPU {client_cpu}")
            endpoint = embedhub_endpoints(
                1, options.model, options.threads, home / "pinned", cpus={endpoint_cpu}
            )
            with endpoint as urls:
                before = os.sched_getaffinity(0)
                os.sched_setaffinity(0, {client_cpu})
                try:
                    settings = Settings(home=home / "client-pinned", backend="auto", cache_mb=0)
                    report["ingest_one_core_each"] = ingest_rounds(
                        urls[0], name, texts, home / "documents", settings, options, None, say
                    )
                finally:
                    os.sched_setaffinity(0, before)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report


def one_core_each() -> tuple[int, int] | None:
    """Two CPUs this process may use (the endpoint's, the client's), or None where affinity
    cannot be set: pinned apart they stand for an endpoint on its own machine."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else None


def ingest_rounds(url: str, name: str, texts: list[str], folder: Path, settings, options: RemoteOptions,
                  direct: float | None, say) -> dict[str, Any]:  # fmt: skip
    """`kb add` of `folder` (one text a file) through the remote backend on one endpoint, and a
    plain client on the same texts, alternating `options.rounds` times (a drift of the shared
    machine then hits both alike: the plain client's figure once moved 122 -> 195 texts/s between
    two runs); `direct` is a first plain-client figure already measured."""
    from embedhub.kb.collection import KnowledgeBase
    from embedhub.kb.ingest import Ingestor
    from embedhub.models.backends import load_encoder

    directs, ingests, failed, chunks = [direct] if direct else [], [], 0, 0
    knowledge_base = KnowledgeBase(settings)
    try:
        reference = f"remote:{url}#{name}"
        encoder = load_encoder(reference, settings)
        for round_number in range(options.rounds):
            if round_number or not directs:
                directs.append(
                    direct_throughput(url, name, texts, options.client_batch, settings.remote_concurrency)
                )
            collection = knowledge_base.create(f"remote{round_number}", encoder, model_reference=reference)
            started = time.perf_counter()
            ingest = Ingestor(collection, encoder).ingest([folder])
            seconds = time.perf_counter() - started
            chunks = collection.store.count()
            ingests.append(chunks / seconds)
            failed += ingest.summary()["failed"]
            say(f"round {round_number + 1}: plain client {directs[-1]:.1f} texts/s, "
                f"kb ingest {ingests[-1]:.1f} chunks/s")  # fmt: skip
        encoder.close()
    finally:
        knowledge_base.close()
    ingest_speed = statistics.median(ingests)
    say(f"kb ingest through the remote backend: {ingest_speed:.1f} chunks/s (median)")
    return {
        "direct_rounds": [round(value, 2) for value in directs],
        "direct_texts_per_second": round(statistics.median(directs), 2),
        "documents": len(texts), "chunks": chunks, "rounds": [round(value, 2) for value in ingests],
        "chunks_per_second": round(ingest_speed, 2),
        "ratio_to_direct": round(ingest_speed / statistics.median(directs), 3),
        "ratio_per_round": [round(i / d, 3) for i, d in zip(ingests, directs, strict=True)],
        "failed": failed,
    }  # fmt: skip


def remote_markdown(report: dict[str, Any]) -> str:
    options = report["options"]
    lines = [
        f"Model {options['model']}, {options['texts']} texts of {options['words']} words, "
        f"{options['threads']} torch thread(s) per endpoint, {report['machine']['cpus']} CPUs.",
        "",
        "| endpoints | texts/s through the remote backend | ratio to 1 endpoint |",
        "|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['endpoints']} | {row['texts_per_second']:,.1f} | {row['ratio_to_one']:.2f}x |")
    ingest = report.get("ingest")
    if ingest:
        lines += [
            "",
            f"One endpoint to a plain client: {report['direct_texts_per_second']:,.1f} texts/s; `kb add` "
            f"through the remote backend: {ingest['chunks_per_second']:,.1f} chunks/s "
            f"({ingest['chunks']} chunks), ratio {ingest['ratio_to_direct']:.2f} (target >= 0.90). "
            f"Medians of {len(ingest['rounds'])} alternating rounds; plain client "
            f"{', '.join(f'{v:,.1f}' for v in report['direct_rounds'])} texts/s, `kb add` "
            f"{', '.join(f'{v:,.1f}' for v in ingest['rounds'])} chunks/s, ratio per round "
            f"{', '.join(f'{v:.2f}' for v in ingest['ratio_per_round'])}.",
        ]
    pinned = report.get("ingest_one_core_each")
    if pinned:
        lines += [
            "",
            f"One core each (the endpoint pinned to one CPU, the client to the other): plain client "
            f"{pinned['direct_texts_per_second']:,.1f} texts/s, `kb add` {pinned['chunks_per_second']:,.1f} "
            f"chunks/s, ratio {pinned['ratio_to_direct']:.2f} (rounds: plain client "
            f"{', '.join(f'{v:,.1f}' for v in pinned['direct_rounds'])}, `kb add` "
            f"{', '.join(f'{v:,.1f}' for v in pinned['rounds'])}).",
        ]
    return "\n".join(lines)


def _cell_main(argument: str) -> None:
    arguments = json.loads(argument)
    options = ScaleOptions(**{**arguments["options"], "work_dir": None})
    folder = Path(arguments["folder"])
    result = run_cell(arguments["store"], arguments["rows"], options, folder)
    (folder / RESULT_FILE).write_text(json.dumps(result))


if __name__ == "__main__":
    _cell_main(sys.argv[1])
