"""What every evaluation task shares: the run context, result records, and batched embedding.

A task receives an `EvalContext` (one loaded encoder, the data location, the options common to all
tasks) and returns a `TaskResult`: flat `Record`s (one per dataset / mode / setting, metric keys
spelled like `ndcg@10`) plus the `Curve`s its plot draws. `report.py` turns a list of results
into JSON, Markdown and PNG files.

Vectors are computed once per distinct text at the model's native size and cached for the run, so
tasks sharing a corpus (retrieval and MRL on SciFact) encode it once. A requested `dimensions=k`
is applied afterwards as first-k-then-normalise, which is exactly what the encoder does for
`dimensions=k` (first k components, then normalised; tests check the two agree).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedhub.engine.cache import EmbeddingCache, look_up
from embedhub.models.base import Encoder, finish
from embedhub.models.spec import InputKind, Task

DEFAULT_ENCODE_BATCH = 64
EVAL_CACHE_BYTES = 4 << 30  # in memory: a corpus of 100k documents at 4096 dims is 1.6 GiB


class PartJournal(Protocol):
    """Where finished parts of a run are kept and found again (eval/journal.py `RunJournal`):
    a Protocol here, so this module needs nothing from the journal that builds on its records."""

    path: Path

    def key(self, config: dict[str, Any]) -> str | None:
        """The key of a part's rows, from its configuration (None: not kept)."""
        ...

    def records(self, key: str) -> list[Record] | None:
        """A finished part's records, or None."""
        ...

    def add_records(self, key: str, config: dict[str, Any], records: list[Record]) -> None:
        """Keep a part's records the moment it is finished."""
        ...


class ProgressSink(Protocol):
    """Where long loops report progress (rich in the CLI, nothing in tests)."""

    def track(self, description: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A context manager yielding `advance(n)`."""
        ...

    def message(self, text: str) -> None:
        """A one-line status message."""
        ...


class NullProgress:
    """Progress that goes nowhere."""

    @contextlib.contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None

    def message(self, text: str) -> None:
        return None


@dataclass
class Record:
    """One row of results: a model on a dataset (and split, mode or setting), with its metrics."""

    task: str
    model: str
    dataset: str
    metrics: dict[str, float]
    split: str | None = None
    mode: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "mode": self.mode,
            "metrics": {key: _plain(value) for key, value in self.metrics.items()},
            "info": {key: _plain(value) for key, value in self.info.items()},
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Record:
        return cls(
            task=row["task"],
            model=row["model"],
            dataset=row["dataset"],
            metrics=dict(row["metrics"]),
            split=row.get("split"),
            mode=row.get("mode"),
            info=dict(row.get("info") or {}),
        )


@dataclass
class Curve:
    """One line of a task's plot. `panel` groups curves into one subplot (e.g. per dataset)."""

    label: str
    x: list[float]
    y: list[float]
    xlabel: str
    ylabel: str
    panel: str = ""
    yerr: list[float] | None = None
    xlog: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "panel": self.panel,
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
            "x": [_plain(v) for v in self.x],
            "y": [_plain(v) for v in self.y],
        }
        if self.yerr is not None:
            out["yerr"] = [_plain(v) for v in self.yerr]
        if self.xlog:
            out["xlog"] = True
        return out

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Curve:
        return cls(
            label=row["label"],
            x=list(row["x"]),
            y=list(row["y"]),
            xlabel=row["xlabel"],
            ylabel=row["ylabel"],
            panel=row.get("panel", ""),
            yerr=row.get("yerr"),
            xlog=bool(row.get("xlog", False)),
        )


@dataclass
class TaskResult:
    """Everything one task produced for one model."""

    task: str
    model: str
    records: list[Record] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: the metric the report's bar chart shows when a task draws no curves
    headline: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "seconds": round(self.seconds, 2),
            "headline": self.headline,
            "notes": list(self.notes),
            "records": [record.to_json() for record in self.records],
            "curves": [curve.to_json() for curve in self.curves],
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> TaskResult:
        return cls(
            task=row["task"],
            model=row["model"],
            records=[Record.from_json(record) for record in row.get("records", [])],
            curves=[Curve.from_json(curve) for curve in row.get("curves", [])],
            notes=list(row.get("notes", [])),
            seconds=float(row.get("seconds") or 0.0),
            headline=row.get("headline"),
        )


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: numpy numbers to Python, floats rounded to 6 places."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if np.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about a model."""

    name: str
    dimensions: int
    max_tokens: int
    instruction_aware: bool
    mrl: bool
    random_weights: bool
    folder: str | None

    @classmethod
    def of(cls, encoder: Encoder) -> ModelInfo:
        spec = encoder.spec
        folder = getattr(encoder, "folder", None)
        return cls(
            name=spec.name,
            dimensions=spec.dimensions,
            max_tokens=spec.max_tokens,
            instruction_aware=spec.supports_instructions,
            mrl=spec.supports_mrl,
            random_weights=spec.random_weights,
            folder=str(folder) if folder else None,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EvalContext:
    """One model and the options every task shares."""

    encoder: Encoder
    data: Path
    dimensions: int | None = None
    encode_batch: int = DEFAULT_ENCODE_BATCH
    limit: int | None = None
    seed: int = 0
    datasets: tuple[str, ...] = ()
    split: str | None = None
    progress: ProgressSink = field(default_factory=NullProgress)
    #: the engine's cache (raw vectors by model and exact input ids): each text is encoded once per
    #: run across tasks, and with a file (`use_cache_file`) across runs and the
    #: knowledge-base modes' throw-away collections too
    cache: EmbeddingCache = field(default_factory=lambda: EmbeddingCache(EVAL_CACHE_BYTES))
    #: texts that were blank and got a zero vector (they can never be retrieved)
    blank_texts: int = 0
    #: where finished parts are kept (eval/journal.py; None: nowhere, as in tests of one task)
    journal: PartJournal | None = None
    #: what the numbers depend on (model, backend, dimensions, limit, seed, split, task options):
    #: with a part's own description, the key of its rows in the journal
    run_config: dict[str, Any] = field(default_factory=dict)
    #: `--keep`: the folder where knowledge-base modes keep their collections for the next run
    keep_dir: Path | None = None
    #: the records of the parts finished so far (the report of an interrupted task shows them)
    finished: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Validate once, up front: a wrong size is an error before any work is done.
        self.encoder.spec.check_dimensions(self.dimensions)

    def use_cache_file(self, path: Path) -> None:
        """Keep vectors in a SQLite file: a second run (or another script) on the same model and
        texts encodes nothing again."""
        self.cache = EmbeddingCache(EVAL_CACHE_BYTES, path)

    @property
    def model(self) -> str:
        return self.encoder.spec.name

    def part(
        self,
        description: dict[str, Any],
        compute: Callable[[], list[Record]],
        *,
        independent_of: Sequence[str] = (),
    ) -> list[Record]:
        """The records of one part of a task (e.g. a dataset and a mode): from the journal when
        an earlier run with the same configuration finished it, else computed and written there
        at once. `independent_of`: task options that do not change this part's numbers (the list
        of modes asked for does not change one mode's), so they are left out of its key.

        Computed records go through their JSON form, as kept ones do: a resumed run's report is
        the same, to the last digit, as an uninterrupted run's."""
        label = " / ".join(str(value) for value in description.values() if value is not None)
        options = {
            name: value
            for name, value in self.run_config.get("options", {}).items()
            if name not in independent_of
        }
        config = {**self.run_config, "options": options, **description}
        key = self.journal.key(config) if self.journal is not None else None
        if self.journal is not None and key is not None:
            kept = self.journal.records(key)
            if kept is not None:
                self.progress.message(f"{label}: finished by an earlier run, taken from {self.journal.path}")
                self.finished.extend(kept)
                return kept
        records = [Record.from_json(record.to_json()) for record in compute()]
        if self.journal is not None and key is not None:
            self.journal.add_records(key, config, records)
        self.finished.extend(records)
        return records

    @property
    def output_dims(self) -> int:
        return self.encoder.spec.check_dimensions(self.dimensions)

    def instruction(self, task: Task) -> str | None:
        """The model's own instruction for a task (None for models without instructions)."""
        return self.encoder.spec.default_instruction(task)

    def embed(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str,
        task: Task = Task.RETRIEVAL,
        truncate: bool = True,
        dimensions: int | str | None = "context",
        description: str = "encoding",
    ) -> np.ndarray:
        """Normalised float32 vectors, one row per text, in order.

        Queries get the model's instruction for `task`; documents none. `dimensions="context"`
        uses the run's `--dimensions`; None means native; an int is an explicit MRL size, checked
        against the model's range like the encoder checks it.
        """
        kind = InputKind.parse(kind)
        instruction = self.instruction(task) if kind is InputKind.QUERY else None
        native = self._native(texts, kind, instruction, truncate, description)
        size = self.dimensions if dimensions == "context" else dimensions
        if size is None or size == self.encoder.native_dims:
            return native
        self.encoder.spec.check_dimensions(int(size))
        return truncate_normalise(native, int(size))

    def _native(
        self,
        texts: Sequence[str],
        kind: InputKind,
        instruction: str | None,
        truncate: bool,
        description: str,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.encoder.native_dims), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            if not text or not text.strip():
                self.blank_texts += 1
                continue
            todo.setdefault(text, []).append(index)
        if not todo:
            return out
        unique = list(todo)
        inputs = self.encoder.tokenize(unique, kind=kind, instruction=instruction, truncate=truncate)
        batch = look_up(self.cache, self.encoder, inputs)
        # Positions in `batch.missing`, longest input first, encoded in similar-length chunks so
        # each encoder call pads little; `computed` keeps the cache batch's own row order.
        missing = batch.missing
        order = sorted(range(len(missing)), key=lambda row: len(inputs[missing[row]]), reverse=True)
        computed = np.zeros((len(missing), self.encoder.native_dims), dtype=np.float32)
        with self.progress.track(f"{description} ({self.model})", len(order)) as advance:
            for start in range(0, len(order), self.encode_batch):
                part = order[start : start + self.encode_batch]
                computed[part] = self.encoder.embed_token_ids([inputs[missing[row]] for row in part])
                advance(len(part))
        vectors = finish(batch.complete(computed), None, normalize=True)
        for text, vector in zip(unique, vectors, strict=True):
            out[todo[text]] = vector
        return out


def truncate_normalise(vectors: np.ndarray, dimensions: int) -> np.ndarray:
    """Matryoshka: the first `dimensions` components, then L2-normalised (zero rows stay zero)."""
    return finish(vectors, dimensions, normalize=True)


@contextlib.contextmanager
def timed(result: TaskResult) -> Iterator[None]:
    """Record the wall time of a task run on its result."""
    start = time.perf_counter()
    try:
        yield
    finally:
        result.seconds = time.perf_counter() - start


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """All indices, or a seeded random subset of `limit` of them kept in their original order."""
    if limit is None or limit >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=limit, replace=False))
