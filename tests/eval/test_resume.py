"""Long evaluations keep what they finished: each dataset/mode's rows go to OUT/rows.jsonl the
moment they are scored, an interrupted run leaves them and a report, a second run resumes without
computing them again (and ends with the same report as an uninterrupted run), and `--keep` keeps
the collections and embedding cache so a second run embeds nothing."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from embedhub.eval import retrieval_modes
from embedhub.eval.journal import ROWS_FILE, RunJournal
from embedhub.eval.suite import KEPT_FOLDER, SuitePlan, TaskPlan, run_plan
from tests.eval.conftest import build_beir

KB_MODES = ["kb-lexical", "kb-dense", "kb-hybrid"]


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> Path:
    """Two tiny BEIR folders where the retrieval task looks for SciFact and CMRC2018."""
    root = tmp_path_factory.mktemp("two-datasets")
    build_beir(root / "beir-scifact")
    build_beir(root / "cmrc2018-zh-retrieval")
    return root


def plan(root: Path, out: Path, modes=KB_MODES, **changes) -> SuitePlan:
    task = TaskPlan("retrieval", {"modes": list(modes)}, datasets=("scifact", "cmrc2018"))
    return SuitePlan(models=[None], tasks=[task], data=root, out=out, plots=False, **changes)


@pytest.fixture
def mode_calls(monkeypatch):
    """Counts (dataset, mode) rankings actually computed; `fail_at` makes one raise instead."""
    calls: Counter = Counter()
    fail_at: set[tuple[str, str]] = set()
    for name in [*KB_MODES, "dense"]:
        original = retrieval_modes.MODES[name]

        def counted(job, original=original, name=name):
            if (job.dataset.name, name) in fail_at:
                raise KeyboardInterrupt
            calls[(job.dataset.name, name)] += 1
            return original(job)

        monkeypatch.setitem(retrieval_modes.MODES, name, counted)
    return calls, fail_at


def stable(markdown: str) -> str:
    """A report without what differs between two runs of the same numbers (when, how long)."""
    return "\n".join(line for line in markdown.splitlines() if not re.match(r"(Created |.*Time: )", line))


def test_an_interrupted_run_keeps_what_finished_and_resumes_to_the_same_report(
    two_datasets, tiny_encoder, mode_calls, tmp_path
):
    calls, fail_at = mode_calls
    out = tmp_path / "stopped"
    fail_at.add(("cmrc2018", "kb-dense"))  # in the middle of the second dataset
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan(two_datasets, out), encoders=[tiny_encoder])
    rows = [json.loads(line) for line in (out / ROWS_FILE).read_text().splitlines()]
    finished = [(row["config"]["dataset"], row["config"]["mode"]) for row in rows]
    assert finished == [("scifact", mode) for mode in KB_MODES] + [("cmrc2018", "kb-lexical")]
    partial = json.loads((out / "results.json").read_text())
    assert "Ctrl-C" in partial["meta"]["stopped"]
    (stopped,) = partial["results"]
    assert [(r["dataset"], r["mode"]) for r in stopped["records"]] == finished
    assert "interrupted" in stopped["notes"][0]
    assert "| scifact" in (out / "report.md").read_text()

    fail_at.clear()
    calls.clear()
    _, _, files = run_plan(plan(two_datasets, out), encoders=[tiny_encoder])
    # only what had not finished was computed
    assert set(calls) == {("cmrc2018", "kb-dense"), ("cmrc2018", "kb-hybrid")}

    calls.clear()
    whole = tmp_path / "whole"
    run_plan(plan(two_datasets, whole), encoders=[tiny_encoder])
    assert len(calls) == 6
    resumed = json.loads(files.json.read_text())
    uninterrupted = json.loads((whole / "results.json").read_text())
    assert resumed["results"][0]["records"] == uninterrupted["results"][0]["records"]
    assert resumed["results"][0]["notes"] == uninterrupted["results"][0]["notes"]
    assert "stopped" not in resumed["meta"]
    assert stable(files.markdown.read_text()) == stable((whole / "report.md").read_text())

    # a finished run is taken whole the next time; --fresh computes everything again
    calls.clear()
    run_plan(plan(two_datasets, out), encoders=[tiny_encoder])
    assert not calls
    run_plan(plan(two_datasets, out, fresh=True), encoders=[tiny_encoder])
    assert len(calls) == 6


def test_another_configuration_is_computed_not_taken(two_datasets, tiny_encoder, mode_calls, tmp_path):
    calls, _ = mode_calls
    out = tmp_path / "out"
    run_plan(plan(two_datasets, out, modes=["dense"]), encoders=[tiny_encoder])
    calls.clear()
    run_plan(plan(two_datasets, out, modes=["dense"], limit=3), encoders=[tiny_encoder])
    assert calls == Counter({("scifact", "dense"): 1, ("cmrc2018", "dense"): 1})
    calls.clear()
    # the same dataset and mode asked for among other modes: the dense rows are taken
    run_plan(plan(two_datasets, out, modes=["dense", "kb-lexical"]), encoders=[tiny_encoder])
    assert set(calls) == {("scifact", "kb-lexical"), ("cmrc2018", "kb-lexical")}


def test_keep_makes_a_second_run_embed_nothing(two_datasets, tiny_encoder, monkeypatch, tmp_path):
    embedded = Counter()
    original = tiny_encoder.embed_token_ids

    def counting(batch):
        embedded["calls"] += 1
        embedded["inputs"] += len(batch)
        return original(batch)

    monkeypatch.setattr(tiny_encoder, "embed_token_ids", counting)
    out = tmp_path / "kept-run"
    modes = ["dense", *KB_MODES]
    first, _, _ = run_plan(plan(two_datasets, out, modes=modes, keep=True), encoders=[tiny_encoder])
    # the corpus and queries (the two folders hold the same texts: the cache computes them once),
    # and the chunks the knowledge base embeds (with their headings)
    assert embedded["inputs"] >= 12 + 6 + 12
    kept = out / KEPT_FOLDER
    assert (kept / "embeddings.sqlite").exists()
    assert len(list((kept / "collections").iterdir())) == 2

    embedded.clear()
    second, _, _ = run_plan(
        plan(two_datasets, out, modes=modes, keep=True, fresh=True), encoders=[tiny_encoder]
    )
    assert embedded["calls"] == 0
    assert [r.to_json() for r in second[0].records] == [r.to_json() for r in first[0].records]


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    (tmp_path / ROWS_FILE).write_text('{"key": "a", "kind": "part", "records": []}\n{"key": "b", "ki')
    journal = RunJournal(tmp_path)
    assert len(journal) == 1 and journal.skipped_lines == 1 and journal.records("a") == []
