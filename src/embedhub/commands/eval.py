"""`embedhub eval TASK ...` and `embedhub eval suite CONFIG.yaml`.

The task commands are built from the task definitions (eval/tasks/__init__.py), so a new task
needs no code here: each takes the shared options the task reads (`--model` (repeatable),
`--dimensions`, `--data`, `--out`, `--datasets`, `--limit`, `--seed`, `--split`, ...) and one
option per field of its options dataclass. `--data` is the data root holding the shared dataset
folders (default ../shared/data, relative to the current directory) or one dataset in the task's
layout (a BEIR folder, a pair file, a Tatoeba folder, ...). Nothing is downloaded; a task without
data says which paths it looked at and exits with code 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import shlex
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from embedhub.commands.support import user_errors
from embedhub.eval.core import DEFAULT_ENCODE_BATCH
from embedhub.eval.tasks import TASKS, TaskDef

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


KEYWORD = inspect.Parameter.KEYWORD_ONLY


@dataclass(frozen=True)
class _Shared:
    """A flag every task command may take; a task offers the ones it reads (`TaskDef.reads`)."""

    annotation: Any
    default: Any
    help: str
    declarations: tuple[str, ...] = ()

    def parameter(self, name: str, help: str | None = None) -> inspect.Parameter:
        option = typer.Option(*self.declarations, help=help or self.help)
        return inspect.Parameter(
            name, KEYWORD, annotation=Annotated[self.annotation, option], default=self.default
        )


_SHARED = {
    "model": _Shared(
        list[str] | None,
        None,
        "Registry name, folder or hub id; repeat for several (default: auto).",
        ("--model", "-m"),
    ),
    "dimensions": _Shared(int | None, None, "Matryoshka size (default native)."),
    "data": _Shared(
        Path, DEFAULT_DATA, "Data root with the dataset folders, or one dataset in the task's layout."
    ),
    "out": _Shared(Path | None, None, "Report folder (default: eval-results/TASK)."),
    "datasets": _Shared(str | None, None, "Comma-separated dataset names (default: all found)."),
    "limit": _Shared(int | None, None, "Cap on queries / pairs / test items per dataset."),
    "seed": _Shared(int, 0, "Seed for samples and splits."),
    "split": _Shared(str | None, None, "Split (default: test when present, else the only one)."),
    # after the task's own flags:
    "encode_batch": _Shared(int, DEFAULT_ENCODE_BATCH, "Texts per encoder call.", ("--encode-batch",)),
    "no_plots": _Shared(bool, False, "Skip the PNG plots.", ("--no-plots",)),
    "quiet": _Shared(bool, False, "No progress bars.", ("--quiet", "-q")),
    "fresh": _Shared(
        bool,
        False,
        "Start over: forget the parts an earlier run finished in the report folder (OUT/rows.jsonl). "
        "Without it a run resumes: parts with the same configuration are taken, not computed.",
        ("--fresh",),
    ),
    "keep": _Shared(
        bool,
        False,
        "Keep the knowledge-base modes' collections and the embedding cache in OUT/kept/, so the "
        "next run embeds nothing again (delete that folder to free the space).",
        ("--keep",),
    ),
}
#: offered by every task command, whatever the task reads
_ALWAYS = ("model", "out", "no_plots", "quiet", "fresh", "keep")
_AFTER_OWN = ("encode_batch", "no_plots", "quiet", "fresh", "keep")

LimitOption = Annotated[int | None, typer.Option(help=_SHARED["limit"].help)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help=_SHARED["quiet"].help)]


class TaskProgressBar:
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

    def __enter__(self) -> TaskProgressBar:
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
    progress = None if quiet else TaskProgressBar()
    try:
        with progress if progress else contextlib.nullcontext():
            results, _, files = run_plan(
                plan, settings=settings, progress=progress, skip_missing=len(plan.tasks) > 1, meta=meta
            )
    except KeyboardInterrupt:
        _stopped(plan)
    _summary(results)
    typer.echo(f"report: {files.markdown}")
    typer.echo(f"results: {files.json}")


def _stopped(plan) -> typing.NoReturn:
    """Ctrl-C: one line saying what was kept and the command that resumes, then exit 130 at once.
    The finished parts are on disk already (the journal syncs each one); an ingest abandoned
    mid-way may still have a forward pass running on a thread, which Python would wait for before
    exiting, so the process leaves without it (`os._exit`) when one does."""
    from embedhub.eval.journal import RunJournal
    from embedhub.kb.ingest import abandoned_work_running

    journal = RunJournal(plan.out)
    report = plan.out / "report.md"
    kept = (
        f"{len(journal)} finished part(s) kept in {journal.path}" if len(journal) else "nothing had finished"
    )
    where = f", their report in {report}" if len(journal) and report.exists() else ""
    typer.echo(f"stopped (Ctrl-C): {kept}{where}; resume with: {_resume_command()}", err=True)
    if abandoned_work_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise typer.Exit(130)


def _resume_command() -> str:
    """The command line that was run, without --fresh (which would forget what finished)."""
    arguments = [argument for argument in sys.argv[1:] if argument != "--fresh"]
    if Path(sys.argv[0]).name not in ("embedhub", "cli.py", "__main__.py") or not arguments:
        return "the same command, without --fresh"
    return shlex.join(["embedhub", *arguments])


def _single(
    task: str,
    options: dict[str, Any],
    *,
    model: list[str] | None = None,
    dimensions: int | None = None,
    data: Path = DEFAULT_DATA,
    out: Path | None = None,
    datasets: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    split: str | None = None,
    encode_batch: int = DEFAULT_ENCODE_BATCH,
    no_plots: bool = False,
    quiet: bool = False,
    fresh: bool = False,
    keep: bool = False,
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
        fresh=fresh,
        keep=keep,
    )
    _execute(plan, quiet, {"task": task, "options": options})


def _flag(task: str, field: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """One option field as a flag: `--field-name`, its type, default and `help` metadata; a bool
    is `--x/--no-x`, a tuple a comma-separated list (split by `make_options`, as in a suite)."""
    flag = "--" + field.name.replace("_", "-")
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        default = ...  # required
    value_type, optional = hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        value_type = members[0] if len(members) == 1 else hint  # X | Y: refused below
    metavar = None
    if typing.get_origin(value_type) is tuple:
        (item, *_) = typing.get_args(value_type) or (str,)
        value_type, metavar = str, f"<{item.__name__},...>"
        if isinstance(default, tuple):
            default = ",".join(str(part) for part in default) or None  # () -> unset
            optional = optional or default is None
    if value_type not in (bool, int, float, str, Path):
        raise TypeError(
            f"option {field.name} of eval task {task}: {hint} has no command-line form; use bool, int, "
            "float, str, Path, tuple[X, ...] or one of them | None"
        )
    declaration = f"{flag}/--no-{flag[2:]}" if value_type is bool else flag
    option = typer.Option(declaration, help=field.metadata.get("help", ""), metavar=metavar)
    annotation = Annotated[value_type | None if optional else value_type, option]
    return inspect.Parameter(field.name, KEYWORD, annotation=annotation, default=default)


def _task_command(task: TaskDef) -> Callable[..., None]:
    """`embedhub eval TASK`: the shared flags the task reads, then one flag per options field."""
    hints = typing.get_type_hints(task.options)
    own = [_flag(task.name, field, hints[field.name]) for field in dataclasses.fields(task.options)]
    clash = sorted({parameter.name for parameter in own} & set(_SHARED))
    if clash:
        raise TypeError(f"eval task {task.name}: option(s) {', '.join(clash)} clash with shared flags")
    offered = [name for name in _SHARED if name in _ALWAYS or name in task.reads]
    shared = {name: _SHARED[name].parameter(name, task.shared_help.get(name)) for name in offered}

    def command(**values: Any) -> None:
        given = {parameter.name: values.pop(parameter.name) for parameter in own}
        # an unset optional flag (None) leaves the field at its default
        options = {name: value for name, value in given.items() if value is not None}
        _single(task.name, options, **values)

    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            *(p for name, p in shared.items() if name not in _AFTER_OWN),
            *own,
            *(p for name, p in shared.items() if name in _AFTER_OWN),
        ]
    )
    command.__name__ = task.name.replace("-", "_")
    command.__doc__ = task.help or task.summary
    return user_errors(command)


def _add_task_commands() -> None:
    for task in TASKS.values():
        app.command(task.name)(_task_command(task))


_add_task_commands()


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
    fresh: Annotated[bool, typer.Option("--fresh", help=_SHARED["fresh"].help)] = False,
    keep: Annotated[bool, typer.Option("--keep", help=_SHARED["keep"].help + " (YAML: keep: true)")] = False,
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
    plan.fresh = fresh
    plan.keep = plan.keep or keep
    _execute(plan, quiet, {"suite": str(config)})


@app.command("list")
def list_tasks() -> None:
    """The tasks and what each measures."""
    for task in TASKS.values():
        typer.echo(f"{task.name:<14} {task.summary}")
