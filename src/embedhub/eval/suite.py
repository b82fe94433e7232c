"""Running tasks for one or more models into one report, and the suite's YAML configuration.

A suite file names models and tasks; every task runs for every model and everything lands in one
report (one JSON, one Markdown file, one plot per task with a line or bar per model):

    models: [all-MiniLM-L6-v2, /models/Qwen3-Embedding-0.6B]   # default: the default model
    data: ../shared/data        # relative paths are relative to the current directory
    out: eval-results/suite
    dimensions: null            # Matryoshka size for every task (null: native)
    limit: null                 # cap on queries / pairs / test items per dataset
    seed: 0
    tasks:
      - retrieval                          # a name alone: default options
      - name: fewshot                      # a name with options
        k: [5, 10, 20]
        seeds: 3
        datasets: [lcqmc, tnews]           # per task: datasets, limit, split, data
      - mrl: {metric: sts}                 # or a one-key mapping
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.eval.core import (
    DEFAULT_ENCODE_BATCH,
    EvalContext,
    ModelInfo,
    NullProgress,
    ProgressSink,
    TaskResult,
)
from embedhub.eval.datasets import DataMissingError
from embedhub.eval.report import ReportFiles, write_report
from embedhub.eval.tasks import get_task, make_options, run_task
from embedhub.models.base import Encoder

SHARED_KEYS = ("datasets", "limit", "split", "data")
TOP_KEYS = ("models", "model", "data", "out", "dimensions", "limit", "seed", "encode_batch", "tasks", "plots")


@dataclass
class TaskPlan:
    """One task to run, with its own options and shared-option overrides."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    limit: int | None = None
    split: str | None = None
    data: Path | None = None


@dataclass
class SuitePlan:
    models: list[str | None]
    tasks: list[TaskPlan]
    data: Path = Path("../shared/data")
    out: Path = Path("eval-results/suite")
    dimensions: int | None = None
    limit: int | None = None
    seed: int = 0
    encode_batch: int = DEFAULT_ENCODE_BATCH
    plots: bool = True


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(item) for item in value)


def parse_task(entry: Any) -> TaskPlan:
    if isinstance(entry, str):
        get_task(entry)
        return TaskPlan(entry)
    if not isinstance(entry, dict):
        raise EmbedhubError(f"a task entry is a name or a mapping, not {entry!r}")
    entry = dict(entry)
    if "name" in entry:
        name = str(entry.pop("name"))
    elif len(entry) == 1:
        name, options = next(iter(entry.items()))
        entry = dict(options or {})
    else:
        raise EmbedhubError(f"task entry {entry!r} needs a `name` (or use the form `TASK: {{options}}`)")
    task = get_task(name)
    shared = {key: entry.pop(key) for key in SHARED_KEYS if key in entry}
    make_options(task, entry)  # validate now: a typo fails before any model loads
    return TaskPlan(
        name,
        entry,
        datasets=_as_tuple(shared.get("datasets")),
        limit=shared.get("limit"),
        split=shared.get("split"),
        data=Path(shared["data"]) if shared.get("data") else None,
    )


def parse_suite(config: dict[str, Any]) -> SuitePlan:
    if not isinstance(config, dict):
        raise EmbedhubError("a suite file is a YAML mapping with `tasks:` (and optionally `models:`)")
    unknown = sorted(set(config) - set(TOP_KEYS))
    if unknown:
        raise EmbedhubError(f"unknown suite key(s) {', '.join(unknown)}; valid: {', '.join(TOP_KEYS)}")
    tasks = config.get("tasks")
    if not tasks:
        raise EmbedhubError("the suite lists no tasks (`tasks: [retrieval, sts, ...]`)")
    models = config.get("models", config.get("model"))
    models = [models] if isinstance(models, str) else list(models or [None])
    plan = SuitePlan(models=models, tasks=[parse_task(entry) for entry in tasks])
    for key in ("data", "out"):
        if config.get(key):
            setattr(plan, key, Path(config[key]))
    for key in ("dimensions", "limit"):
        if config.get(key) is not None:
            setattr(plan, key, int(config[key]))
    plan.seed = int(config.get("seed", 0))
    plan.encode_batch = int(config.get("encode_batch", DEFAULT_ENCODE_BATCH))
    plan.plots = bool(config.get("plots", True))
    return plan


def load_suite(path: Path) -> SuitePlan:
    import yaml

    path = Path(path)
    if not path.exists():
        raise EmbedhubError(f"suite file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise EmbedhubError(f"{path} is not valid YAML: {error}") from error
    return parse_suite(config)


def run_plan(
    plan: SuitePlan,
    *,
    settings: Settings | None = None,
    encoders: Sequence[Encoder] | None = None,
    progress: ProgressSink | None = None,
    skip_missing: bool = True,
    meta: dict[str, Any] | None = None,
) -> tuple[list[TaskResult], list[ModelInfo], ReportFiles]:
    """Run every task for every model; write one report. Models load one at a time.

    `encoders` (already loaded) replace `plan.models`. A task whose data is missing becomes a note
    in the report when `skip_missing`, else its error propagates.
    """
    progress = progress or NullProgress()
    results: list[TaskResult] = []
    infos: list[ModelInfo] = []
    references: list[Encoder | str | None] = list(encoders) if encoders else list(plan.models)
    for reference in references:
        encoder = reference if isinstance(reference, Encoder) else _load(reference, settings, progress)
        infos.append(ModelInfo.of(encoder))
        shared_ctx: EvalContext | None = None
        for task in plan.tasks:
            ctx = EvalContext(
                encoder=encoder,
                data=Path(task.data or plan.data),
                dimensions=plan.dimensions,
                encode_batch=plan.encode_batch,
                limit=task.limit if task.limit is not None else plan.limit,
                seed=plan.seed,
                datasets=task.datasets,
                split=task.split,
                progress=progress,
            )
            if shared_ctx is not None:
                ctx.cache = shared_ctx.cache  # one model: encode each text once across tasks
            shared_ctx = ctx
            progress.message(f"{task.name} with {encoder.spec.name}")
            try:
                results.append(run_task(task.name, ctx, task.options))
            except DataMissingError as error:
                if not skip_missing:
                    raise
                progress.message(f"skipped {task.name}: {error}")
                results.append(TaskResult(task.name, encoder.spec.name, notes=[f"skipped: {error}"]))
        if not isinstance(reference, Encoder):
            encoder.close()
            del encoder
            gc.collect()
    report_meta = {"data": str(plan.data), **({"dimensions": plan.dimensions} if plan.dimensions else {})}
    if plan.limit is not None:
        report_meta["limit"] = plan.limit
    report_meta.update(meta or {})
    files = write_report(results, infos, plan.out, report_meta, plots=plan.plots)
    return results, infos, files


def _load(reference: str | None, settings: Settings | None, progress: ProgressSink) -> Encoder:
    from embedhub.models.backends import load_encoder

    settings = settings or Settings()
    chosen = reference or settings.model
    progress.message(f"loading model {chosen}")
    return load_encoder(chosen, settings)
