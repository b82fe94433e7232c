"""`embedhub eval TASK` is generated from the task's options dataclass: no field can lack a flag,
and the flags reach the options object the task runs with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from embedhub.commands import eval as cli
from embedhub.eval.suite import SuitePlan
from embedhub.eval.tasks import TASKS, TaskDef, get_task, make_options


def _commands() -> dict:
    return typer.main.get_command(cli.app).commands


@pytest.mark.parametrize("name", list(TASKS))
def test_every_option_field_is_a_flag_with_help(name):
    task = TASKS[name]
    command = _commands()[name]
    flags = {opt: parameter for parameter in command.params for opt in parameter.opts}
    for option in dataclasses.fields(task.options):
        flag = "--" + option.name.replace("_", "-")
        assert flag in flags, f"{task.options.__name__}.{option.name} has no {flag} on `embedhub eval {name}`"
        assert flags[flag].help, f"{flag} of `embedhub eval {name}` has no help (field metadata 'help')"
    shared = {"model", "out", "no_plots", "quiet", "fresh", "keep", *task.reads}
    assert {parameter.name for parameter in command.params} == shared | {
        option.name for option in dataclasses.fields(task.options)
    }
    assert command.help == task.help


@pytest.fixture
def captured(monkeypatch):
    """Run a task command up to the plan it would execute (no model loads)."""
    plans: list[SuitePlan] = []
    monkeypatch.setattr(cli, "_execute", lambda plan, quiet, meta: plans.append(plan))

    def invoke(*args: str):
        result = CliRunner().invoke(cli.app, list(args))
        assert result.exit_code == 0, result.output
        (plan,) = plans[-1:]
        (task,) = plan.tasks
        return plan, task, make_options(get_task(task.name), task.options)

    return invoke


def test_flags_reach_the_options_object(captured):
    # flags the hand-written commands lacked (code --depth, retrieval --rrf-k)
    _, _, options = captured("code", "--depth", "50", "--modes", "dense,lexical")
    assert options.depth == 50 and options.modes == ("dense", "lexical")
    plan, task, options = captured(
        "retrieval", "--rrf-k", "30", "--k1", "1.5", "--split", "train", "--limit", "7", "-m", "a", "-m", "b"
    )
    assert (options.rrf_k, options.k1, options.b, options.depth) == (30, 1.5, 0.75, 1000)
    assert (task.split, plan.limit, plan.models) == ("train", 7, ["a", "b"])
    _, task, options = captured("fewshot", "--k", "5,10", "--c", "0.5", "--datasets", "tnews,agnews")
    assert options.k == (5, 10) and options.c == 0.5 and options.seeds == 5
    assert task.datasets == ("tnews", "agnews")
    _, _, options = captured("mrl", "--dims", "64,128", "--metric", "sts")
    assert options.dims == (64, 128) and options.metric == "sts"
    _, _, options = captured("mrl")
    assert options.dims == ()
    _, _, options = captured("long-context", "--whole-max-tokens", "100")
    assert options.whole_max_tokens == 100 and options.segment_tokens == 4096
    plan, _, options = captured("throughput", "--lengths", "16,32", "--dimensions", "64", "--no-plots")
    assert options.lengths == (16, 32) and plan.dimensions == 64 and plan.plots is False


def test_bad_values_are_usage_errors(captured):
    runner = CliRunner()
    wrong_type = runner.invoke(cli.app, ["code", "--depth", "many"])
    assert wrong_type.exit_code == 2 and "--depth" in wrong_type.output
    wrong_item = runner.invoke(cli.app, ["fewshot", "--k", "5,ten", "-q"])
    assert wrong_item.exit_code == 2 and "option k: 'ten'" in wrong_item.output
    not_offered = runner.invoke(cli.app, ["throughput", "--datasets", "x"])
    assert not_offered.exit_code == 2 and "No such option" in not_offered.output


@dataclass
class _AllKinds:
    """Options of a task that exists only in this test."""

    fast: bool = field(default=True, metadata={"help": "Go fast."})
    ratio: float | None = field(default=None, metadata={"help": "A ratio."})
    names: tuple[str, ...] = field(default=("a", "b"), metadata={"help": "Names."})
    folder: Path = field(default=Path("."), metadata={"help": "A folder."})
    count: int = field(default=3, metadata={"help": "A count."})


def test_a_new_task_needs_no_cli_code(monkeypatch):
    runs = []
    monkeypatch.setattr(cli, "_single", lambda task, options, **shared: runs.append((options, shared)))
    app = typer.Typer()
    task = TaskDef("kinds", "every kind of option", _AllKinds, run=None, reads=frozenset({"limit"}))
    app.command("kinds")(cli._task_command(task))
    app.command("other")(lambda: None)  # a group, as in `embedhub eval`
    runner = CliRunner()
    result = runner.invoke(app, ["kinds", "--no-fast", "--ratio", "0.5", "--names", "x,y", "--limit", "2"])
    assert result.exit_code == 0, result.output
    options, shared = runs[-1]
    assert make_options(task, options) == _AllKinds(fast=False, ratio=0.5, names=("x", "y"))
    assert shared["limit"] == 2 and "seed" not in shared and "datasets" not in shared
    assert runner.invoke(app, ["kinds"]).exit_code == 0
    assert make_options(task, runs[-1][0]) == _AllKinds()


def test_an_option_type_without_a_flag_form_is_refused():
    @dataclass
    class Odd:
        weights: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="option weights of eval task odd"):
        cli._task_command(TaskDef("odd", "", Odd, run=None))


def test_fresh_and_keep_reach_the_plan(captured):
    plan, _, _ = captured("retrieval", "--modes", "kb-dense", "--fresh", "--keep")
    assert plan.fresh is True and plan.keep is True
    plan, _, _ = captured("sts")
    assert plan.fresh is False and plan.keep is False


def test_ctrl_c_says_where_the_report_is_and_how_to_resume(monkeypatch, tmp_path):
    import embedhub.eval.suite as suite

    def stopped(plan, **_):
        from embedhub.eval.journal import RunJournal

        plan.out.mkdir(parents=True)
        RunJournal(plan.out).add_records("a-part", {"dataset": "scifact"}, [])
        (plan.out / "report.md").write_text("# what finished\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(suite, "run_plan", stopped)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.app, ["retrieval", "--out", str(out), "-q"])
    assert result.exit_code == 130
    assert result.output.count("\n") == 1  # one line
    assert result.output == (
        f"stopped (Ctrl-C): 1 finished part(s) kept in {out / 'rows.jsonl'}, their report in "
        f"{out / 'report.md'}; resume with: the same command, without --fresh\n"
    )
