"""The evaluation tasks, by name. A wrong name lists the choices."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from embedhub.errors import EmbedhubError
from embedhub.eval.core import EvalContext, TaskResult
from embedhub.eval.tasks import bitext, code, fewshot, long_context, mrl, pairs, retrieval, throughput

#: The shared inputs (`EvalContext` fields) a task reads unless it says otherwise.
READS = frozenset({"dimensions", "data", "datasets", "limit", "seed", "encode_batch"})


@dataclass(frozen=True)
class TaskDef:
    """A task: its options dataclass and run function. `embedhub eval NAME` is built from this
    (commands/eval.py): one flag per options field (its `help` metadata), plus the shared flags of the
    inputs in `reads`."""

    name: str
    summary: str
    options: type
    run: Callable[[EvalContext, Any], TaskResult]
    #: the command's help (default: the summary)
    help: str = ""
    #: the shared inputs the task uses (of: dimensions, data, datasets, limit, seed, split,
    #: encode_batch); its command offers only these
    reads: frozenset[str] = READS
    #: what a shared flag means for this task, where it differs (bitext: --datasets are languages)
    shared_help: Mapping[str, str] = field(default_factory=dict)


TASKS: dict[str, TaskDef] = {
    task.name: task
    for task in (
        TaskDef(
            "retrieval",
            "BEIR data: nDCG@10, Recall@100, MRR@10, MAP per mode (dense, lexical, hybrid)",
            retrieval.RetrievalOptions,
            retrieval.run,
            help="BEIR retrieval (corpus.jsonl, queries.jsonl, qrels/*.tsv): nDCG@10, Recall@100, "
            "MRR@10, MAP.",
            reads=READS | {"split"},
        ),
        TaskDef(
            "sts",
            "Spearman of cosine vs gold similarity scores",
            pairs.PairOptions,
            pairs.run_sts,
            help="STS: Spearman of cosine vs gold scores (STS-B en/zh, Chinese STS-B, SICK, STS16).",
        ),
        TaskDef(
            "pairs",
            "pair classification: Spearman vs labels, AP, best-threshold accuracy / F1",
            pairs.PairOptions,
            pairs.run_pairs,
            help="Pair classification (LCQMC, AFQMC, BUSTM, PAWS-X, TrecQA): Spearman, AP, accuracy, F1.",
        ),
        TaskDef(
            "fewshot",
            "logistic regression on k examples per class, mean and spread over seeds",
            fewshot.FewshotOptions,
            fewshot.run,
            help="Few-shot logistic regression (LCQMC pairs, TNEWS, AG News, EPRSTMT, BUSTM, IFLYTEK, "
            "CSLDCP).",
        ),
        TaskDef(
            "bitext",
            "Tatoeba nearest-neighbour accuracy in both directions",
            bitext.BitextOptions,
            bitext.run,
            help="Tatoeba bitext mining: nearest-neighbour accuracy in both directions, per language.",
            shared_help={"datasets": "Comma-separated languages (e.g. cmn,deu)."},
        ),
        TaskDef(
            "code",
            "CoSQA query -> function: MRR@10, Recall@k",
            code.CodeOptions,
            code.run,
            help="CoSQA code search (query -> Python function): MRR@10, nDCG@10, Recall@k.",
            reads=(READS - {"datasets"}) | {"split"},
        ),
        TaskDef(
            "long-context",
            "whole-document vs segment similarity by position",
            long_context.LongContextOptions,
            long_context.run,
            help="Long documents: whole-document vs each segment's vector, by position.",
            shared_help={
                "datasets": "Comma-separated name parts to select documents (e.g. rfc3986,laws).",
                "limit": "Documents at most.",
            },
        ),
        TaskDef(
            "mrl",
            "quality and index size at Matryoshka sizes",
            mrl.MrlOptions,
            mrl.run,
            help="Matryoshka sizes: a retrieval or STS metric and the index size per size.",
            reads=(READS - {"dimensions"}) | {"split"},
        ),
        TaskDef(
            "throughput",
            "docs/s and tokens/s at fixed input lengths, memory",
            throughput.ThroughputOptions,
            throughput.run,
            help="Speed: docs/s and tokens/s at fixed input lengths for the backend and batch size, memory.",
            reads=frozenset({"dimensions"}),
        ),
    )
}


def get_task(name: str) -> TaskDef:
    try:
        return TASKS[name]
    except KeyError:
        raise EmbedhubError(f"unknown evaluation task {name!r}; choose one of: {', '.join(TASKS)}") from None


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Turn a YAML / CLI value into the option's type (tuples from lists or comma strings)."""
    hint = annotation if not isinstance(annotation, str) else None
    origin = typing.get_origin(hint)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(hint) or (str,)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            items = [items]
        return tuple(_coerce(name, inner, item.strip() if isinstance(item, str) else item) for item in items)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return None if value is None else _coerce(name, inner[0], value)
    if hint in (int, float, str, bool) and value is not None:
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise EmbedhubError(f"option {name}: {value!r} is not a {hint.__name__}") from None
    return value


def make_options(task: TaskDef, values: Mapping[str, Any] | None = None) -> Any:
    """The task's options from a mapping (YAML or CLI); an unknown key lists the valid ones."""
    values = dict(values or {})
    hints = typing.get_type_hints(task.options)
    fields = {field.name for field in dataclasses.fields(task.options)}
    unknown = sorted(set(values) - fields)
    if unknown:
        valid = ", ".join(sorted(fields)) or "(none)"
        raise EmbedhubError(f"unknown option(s) {', '.join(unknown)} for task {task.name}; valid: {valid}")
    return task.options(**{key: _coerce(key, hints[key], value) for key, value in values.items()})


def run_task(name: str, ctx: EvalContext, options: Mapping[str, Any] | Any | None = None) -> TaskResult:
    task = get_task(name)
    if options is None or isinstance(options, Mapping):
        options = make_options(task, options)
    return task.run(ctx, options)


__all__ = ["READS", "TASKS", "TaskDef", "get_task", "make_options", "run_task"]
