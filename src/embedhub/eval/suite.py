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

import dataclasses
import gc
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedhub import __version__
from embedhub.config import Settings
from embedhub.engine.cache import EmbeddingCache
from embedhub.errors import EmbedhubError
from embedhub.eval.core import (
    DEFAULT_ENCODE_BATCH,
    EVAL_CACHE_BYTES,
    EvalContext,
    ModelInfo,
    NullProgress,
    ProgressSink,
    TaskResult,
)
from embedhub.eval.datasets import DataMissingError
from embedhub.eval.journal import RunJournal
from embedhub.eval.report import ReportFiles, write_report
from embedhub.eval.tasks import get_task, make_options, run_task
from embedhub.models.base import Encoder

SHARED_KEYS = ("datasets", "limit", "split", "data")
TOP_KEYS = (
    "models",
    "model",
    "data",
    "out",
    "dimensions",
    "limit",
    "seed",
    "encode_batch",
    "tasks",
    "plots",
    "keep",
)
#: under the report folder: `--keep`'s collections and embedding cache
KEPT_FOLDER = "kept"


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
    #: forget the parts earlier runs finished in `out` (rows.jsonl) and compute everything again
    fresh: bool = False
    #: keep the knowledge-base modes' collections and the embedding cache in `out/kept/`
    keep: bool = False


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
    plan.keep = bool(config.get("keep", False))
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

    Every finished part is kept in `plan.out/rows.jsonl` at once (eval/journal.py) and parts an
    earlier run finished with the same configuration are taken from there (`plan.fresh`: start
    over). When the run stops early (Ctrl-C, an error), the report of what finished is written
    before the exception goes on.
    """
    progress = progress or NullProgress()
    journal = RunJournal(plan.out, fresh=plan.fresh)
    if len(journal) and not plan.fresh:
        progress.message(f"resuming: {len(journal)} finished parts in {journal.path} (--fresh starts over)")
    keep_dir = plan.out / KEPT_FOLDER if plan.keep else None
    kept_cache = EmbeddingCache(EVAL_CACHE_BYTES, keep_dir / "embeddings.sqlite") if keep_dir else None
    results: list[TaskResult] = []
    infos: list[ModelInfo] = []
    references: list[Encoder | str | None] = list(encoders) if encoders else list(plan.models)
    current: tuple[TaskPlan, EvalContext] | None = None
    total = len(references) * len(plan.tasks)
    try:
        for model_number, reference in enumerate(references):
            encoder = reference if isinstance(reference, Encoder) else _load(reference, settings, progress)
            infos.append(ModelInfo.of(encoder))
            shared_ctx: EvalContext | None = None
            for task_number, task in enumerate(plan.tasks, start=1):
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
                    journal=journal,
                    keep_dir=keep_dir,
                )
                if kept_cache is not None:
                    ctx.cache = kept_cache
                elif shared_ctx is not None:
                    ctx.cache = shared_ctx.cache  # one model: encode each text once across tasks
                shared_ctx = ctx
                ctx.run_config = run_config(ctx, task)
                task_config = {**ctx.run_config, "datasets": list(task.datasets)}
                key = journal.key(task_config)
                number = model_number * len(plan.tasks) + task_number
                done = journal.result(key)
                if done is not None:
                    progress.message(
                        f"[{number}/{total}] {task.name} with {encoder.spec.name}: finished by an "
                        f"earlier run, taken from {journal.path}"
                    )
                    results.append(done)
                    continue
                progress.message(f"[{number}/{total}] {task.name} with {encoder.spec.name}")
                current = (task, ctx)
                try:
                    result = run_task(task.name, ctx, task.options)
                except DataMissingError as error:
                    if not skip_missing:
                        raise
                    progress.message(f"skipped {task.name}: {error}")
                    results.append(TaskResult(task.name, encoder.spec.name, notes=[f"skipped: {error}"]))
                    current = None
                    continue
                # through JSON, as a resumed run reads it: both reports are the same
                result = TaskResult.from_json(result.to_json())
                journal.add_result(key, task_config, result)
                results.append(result)
                current = None
            if not isinstance(reference, Encoder):
                encoder.close()
                del encoder
                gc.collect()
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        reason = "interrupted (Ctrl-C)" if interrupted else f"stopped: {error!r}"
        if current is not None and current[1].finished:
            task, ctx = current
            note = f"{reason} during this task: only the parts listed finished; run again to resume"
            results.append(TaskResult(task.name, ctx.model, records=list(ctx.finished), notes=[note]))
        if any(result.records for result in results):  # a run that finished nothing leaves nothing
            # after Ctrl-C without plots (drawing them takes seconds; the resumed run draws them),
            # and said by the command, in one line with the command that resumes
            stopped_meta = {**(meta or {}), "stopped": reason}
            files = _write(plan, results, infos, stopped_meta, plots=plan.plots and not interrupted)
            if not interrupted:
                progress.message(f"{reason}; the report of what finished: {files.markdown}")
        raise
    finally:
        if kept_cache is not None:
            kept_cache.close()
    files = _write(plan, results, infos, meta or {})
    if keep_dir is not None:
        progress.message(
            f"kept collections and embedding cache in {keep_dir} (delete that folder to free it)"
        )
    return results, infos, files


def run_config(ctx: EvalContext, task: TaskPlan) -> dict[str, Any]:
    """What a task's numbers depend on, for the journal's keys (the datasets asked for are added
    per task; a part adds its own dataset and mode)."""
    encoder = ctx.encoder
    options = make_options(get_task(task.name), task.options)
    fields = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(task.options)
    return {
        "embedhub": __version__,
        "task": task.name,
        "model": encoder.spec.name,
        "folder": str(getattr(encoder, "folder", None) or ""),
        "backend": getattr(encoder, "backend", ""),
        "dimensions": ctx.output_dims,
        "limit": ctx.limit,
        "seed": ctx.seed,
        "split": ctx.split,
        "data": str(ctx.data.resolve()),
        # as the journal writes it (tuples as lists, paths as text): a kept key compares equal
        "options": json.loads(json.dumps(fields, default=str)),
    }


def _write(
    plan: SuitePlan,
    results: list[TaskResult],
    infos: list[ModelInfo],
    meta: dict[str, Any],
    plots: bool | None = None,
) -> ReportFiles:
    report_meta = {"data": str(plan.data), **({"dimensions": plan.dimensions} if plan.dimensions else {})}
    if plan.limit is not None:
        report_meta["limit"] = plan.limit
    report_meta.update(meta)
    return write_report(results, infos, plan.out, report_meta, plots=plan.plots if plots is None else plots)


def _load(reference: str | None, settings: Settings | None, progress: ProgressSink) -> Encoder:
    from embedhub.models.backends import load_encoder

    settings = settings or Settings()
    chosen = reference or settings.model
    progress.message(f"loading model {chosen}")
    return load_encoder(chosen, settings)
