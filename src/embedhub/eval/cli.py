"""`embedhub eval TASK ...` and `embedhub eval suite CONFIG.yaml`.

Every task command takes the shared options (`--model` (repeatable), `--dimensions`, `--data`,
`--out`, `--datasets`, `--limit`, `--seed`) and its own. `--data` is the data root holding the
shared dataset folders (default ../shared/data, relative to the current directory) or one
dataset in the task's layout (a BEIR folder, a pair file, a Tatoeba folder, ...). Nothing is
downloaded; a task without data says which paths it looked at and exits with code 2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from embedhub.cli_support import user_errors

# typer may vendor its own copy of click: catch the usage error class it actually raises
_USAGE_ERRORS = tuple(
    {click.UsageError, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")}
)


class _TaskGroup(TyperGroup):
    """A wrong task name lists the valid ones."""

    def resolve_command(self, ctx: Any, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except _USAGE_ERRORS as error:
            from embedhub.eval.tasks import TASKS

            message = error.message if error.message.endswith((".", "?")) else error.message + "."
            error.message = f"{message} Tasks: {', '.join(TASKS)} (and: list, suite)"
            raise


app = typer.Typer(
    cls=_TaskGroup,
    help="Evaluate embedding models on local data: retrieval, STS, pairs, few-shot, bitext, code, "
    "long context, Matryoshka sizes and throughput.",
    no_args_is_help=True,
)

DEFAULT_DATA = Path("../shared/data")
_chosen: dict[str, str | None] = {"backend": None}


@app.callback()
def _options(
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="How models run: torch | torch-bf16 | torch-int8 | onnx-int8 | auto "
            "(before the task: embedhub eval --backend torch-bf16 sts). [env: EMBEDHUB_BACKEND]",
            show_default=False,
        ),
    ] = None,
) -> None:
    _chosen["backend"] = backend


ModelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model", "-m", help="Registry name, folder or hub id; repeat for several (default: auto)."
    ),
]
DimensionsOption = Annotated[int | None, typer.Option(help="Matryoshka size (default native).")]
DataOption = Annotated[
    Path, typer.Option(help="Data root with the dataset folders, or one dataset in the task's layout.")
]
OutOption = Annotated[Path | None, typer.Option(help="Report folder (default: eval-results/TASK).")]
DatasetsOption = Annotated[
    str | None, typer.Option(help="Comma-separated dataset names (default: all found).")
]
LimitOption = Annotated[int | None, typer.Option(help="Cap on queries / pairs / test items per dataset.")]
SeedOption = Annotated[int, typer.Option(help="Seed for samples and splits.")]
SplitOption = Annotated[
    str | None, typer.Option(help="Split (default: test when present, else the only one).")
]
EncodeBatchOption = Annotated[int, typer.Option("--encode-batch", help="Texts per encoder call.")]
ModesOption = Annotated[
    str,
    typer.Option(
        help="Comma-separated modes: dense, lexical, hybrid (the raw encoder), "
        "kb-dense, kb-lexical, kb-hybrid (through the knowledge base)."
    ),
]
NoPlotsOption = Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


class RichProgress:
    """Progress bars on stderr while a task runs."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @contextlib.contextmanager
    def track(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(description, total=total)
        try:
            yield lambda n=1: self.progress.advance(task, n)
        finally:
            self.progress.remove_task(task)

    def message(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")


def _split_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def _summary(results) -> None:
    for result in results:
        metric = result.headline
        for record in result.records:
            value = record.metrics.get(metric) if metric else None
            if value is None:
                continue
            where = " / ".join(part for part in (record.dataset, record.split, record.mode) if part)
            typer.echo(f"{result.task:<12} {result.model:<24} {where:<44} {metric} = {value:.4f}")
        for note in result.notes:
            if note.startswith("skipped"):
                typer.echo(f"{result.task:<12} {result.model:<24} {note}")


def _execute(plan, quiet: bool, meta: dict[str, Any]) -> None:
    from embedhub.config import Settings
    from embedhub.eval.suite import run_plan

    settings = Settings()
    if _chosen["backend"]:
        settings = settings.model_copy(update={"backend": _chosen["backend"]})
    meta = {**meta, "backend": settings.backend}
    progress = None if quiet else RichProgress()
    with progress if progress else contextlib.nullcontext():
        results, _, files = run_plan(
            plan, settings=settings, progress=progress, skip_missing=len(plan.tasks) > 1, meta=meta
        )
    _summary(results)
    typer.echo(f"report: {files.markdown}")
    typer.echo(f"results: {files.json}")


def _single(
    task: str,
    options: dict[str, Any],
    *,
    model: list[str] | None,
    dimensions: int | None,
    data: Path,
    out: Path | None,
    datasets: str | None,
    limit: int | None,
    seed: int,
    split: str | None = None,
    encode_batch: int = 64,
    no_plots: bool = False,
    quiet: bool = False,
) -> None:
    from embedhub.eval.suite import SuitePlan, TaskPlan
    from embedhub.eval.tasks import get_task, make_options

    make_options(get_task(task), options)  # option errors before a model loads
    plan = SuitePlan(
        models=list(model) if model else [None],
        tasks=[TaskPlan(task, options, datasets=_split_list(datasets), split=split)],
        data=data,
        out=out or Path("eval-results") / task,
        dimensions=dimensions,
        limit=limit,
        seed=seed,
        encode_batch=encode_batch,
        plots=not no_plots,
    )
    _execute(plan, quiet, {"task": task, "options": {k: v for k, v in options.items() if v is not None}})


@app.command()
@user_errors
def retrieval(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: DatasetsOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    split: SplitOption = None,
    modes: ModesOption = "dense,lexical,hybrid",
    depth: Annotated[int, typer.Option(help="Documents ranked per query.")] = 1000,
    k1: Annotated[float, typer.Option(help="BM25 k1.")] = 0.9,
    b: Annotated[float, typer.Option(help="BM25 b.")] = 0.4,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """BEIR retrieval (corpus.jsonl, queries.jsonl, qrels/*.tsv): nDCG@10, Recall@100, MRR@10, MAP."""
    _single(
        "retrieval",
        {"modes": modes, "depth": depth, "k1": k1, "b": b},
        **_common(locals()),
        split=split,
    )


@app.command()
@user_errors
def sts(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: DatasetsOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """STS: Spearman of cosine vs gold scores (STS-B en/zh, Chinese STS-B, SICK, STS16)."""
    _single("sts", {}, **_common(locals()))


@app.command()
@user_errors
def pairs(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: DatasetsOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Pair classification (LCQMC, AFQMC, BUSTM, PAWS-X, TrecQA): Spearman, AP, accuracy, F1."""
    _single("pairs", {}, **_common(locals()))


@app.command()
@user_errors
def fewshot(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: DatasetsOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    k: Annotated[str, typer.Option(help="Comma-separated examples per class.")] = "5,10,20,50",
    seeds: Annotated[int, typer.Option(help="Random draws per k.")] = 5,
    test_size: Annotated[int, typer.Option(help="Held-out items where one file must be split.")] = 2000,
    c: Annotated[float, typer.Option("--c", help="Logistic regression C.")] = 1.0,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Few-shot logistic regression (LCQMC pairs, TNEWS, AG News, EPRSTMT, BUSTM, IFLYTEK, CSLDCP)."""
    _single("fewshot", {"k": k, "seeds": seeds, "test_size": test_size, "c": c}, **_common(locals()))


@app.command()
@user_errors
def bitext(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: Annotated[str | None, typer.Option(help="Comma-separated languages (e.g. cmn,deu).")] = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Tatoeba bitext mining: nearest-neighbour accuracy in both directions, per language."""
    _single("bitext", {}, **_common(locals()))


@app.command()
@user_errors
def code(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    split: SplitOption = None,
    modes: ModesOption = "dense,lexical,hybrid",
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """CoSQA code search (query -> Python function): MRR@10, nDCG@10, Recall@k."""
    _single("code", {"modes": modes}, **_common(locals(), datasets=None), split=split)


@app.command("long-context")
@user_errors
def long_context(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: Annotated[
        str | None, typer.Option(help="Comma-separated name parts to select documents (e.g. rfc3986,laws).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Documents at most.")] = None,
    seed: SeedOption = 0,
    segment_tokens: Annotated[int, typer.Option(help="Segment size (capped at the model's limit).")] = 4096,
    whole_max_tokens: Annotated[
        int | None, typer.Option(help="Cap on the whole-document input (default: the model's limit).")
    ] = None,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Long documents: whole-document vs each segment's vector, by position."""
    options = {"segment_tokens": segment_tokens, "whole_max_tokens": whole_max_tokens}
    _single("long-context", options, **_common(locals()))


@app.command()
@user_errors
def mrl(
    model: ModelOption = None,
    data: DataOption = DEFAULT_DATA,
    out: OutOption = None,
    datasets: DatasetsOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    split: SplitOption = None,
    metric: Annotated[
        str, typer.Option(help="retrieval (nDCG@10, SciFact) or sts (Spearman, STS-B).")
    ] = "retrieval",
    dims: Annotated[
        str | None, typer.Option(help="Comma-separated sizes (default: 32, 64, .., native).")
    ] = None,
    encode_batch: EncodeBatchOption = 64,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Matryoshka sizes: a retrieval or STS metric and the index size per size."""
    options: dict[str, Any] = {"metric": metric}
    if dims:
        options["dims"] = dims
    _single("mrl", options, **_common(locals(), dimensions=None), split=split)


@app.command()
@user_errors
def throughput(
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    out: OutOption = None,
    lengths: Annotated[str, typer.Option(help="Comma-separated input lengths in tokens.")] = "128,512,2048",
    batch_size: Annotated[int, typer.Option(help="Inputs per batch.")] = 8,
    batches: Annotated[int, typer.Option(help="Timed batches per length.")] = 2,
    no_plots: NoPlotsOption = False,
    quiet: QuietOption = False,
) -> None:
    """Speed: docs/s and tokens/s at fixed input lengths for the backend and batch size, memory."""
    options = {"lengths": lengths, "batch_size": batch_size, "batches": batches}
    _single(
        "throughput",
        options,
        **_common(locals(), data=DEFAULT_DATA, datasets=None, limit=None, seed=0, encode_batch=64),
    )


@app.command()
@user_errors
def suite(
    config: Annotated[Path, typer.Argument(help="Suite YAML: models, tasks and their options.")],
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Replace the suite's models; repeatable.")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Replace the suite's data root.")] = None,
    out: Annotated[Path | None, typer.Option(help="Replace the suite's report folder.")] = None,
    limit: LimitOption = None,
    quiet: QuietOption = False,
) -> None:
    """Several tasks and models from a YAML file, into one report."""
    from embedhub.eval.suite import load_suite

    plan = load_suite(config)
    if model:
        plan.models = list(model)
    if data:
        plan.data = data
    if out:
        plan.out = out
    if limit is not None:
        plan.limit = limit
    _execute(plan, quiet, {"suite": str(config)})


@app.command("list")
def list_tasks() -> None:
    """The tasks and what each measures."""
    from embedhub.eval.tasks import TASKS

    for task in TASKS.values():
        typer.echo(f"{task.name:<14} {task.summary}")


_COMMON = (
    "model",
    "dimensions",
    "data",
    "out",
    "datasets",
    "limit",
    "seed",
    "encode_batch",
    "no_plots",
    "quiet",
)


def _common(values: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    picked = {key: values[key] for key in _COMMON if key in values}
    picked.update(overrides)
    return picked
