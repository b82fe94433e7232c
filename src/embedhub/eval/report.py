"""Reports: results.json (every number), report.md (tables, notes, plots) and plots/TASK.png.

One report can hold several tasks and several models (a suite). Plots are drawn with matplotlib's
Agg backend (no display needed): a task's curves when it has them (metric vs k for few-shot,
metric vs dimensions for MRL, similarity vs segment position for long context, ...), otherwise a
bar chart of its headline metric per dataset and mode. Each model gets its own line or bar.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from embedhub.eval.core import Curve, ModelInfo, Record, TaskResult

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
INFO_COLUMNS = ("queries", "pairs", "documents", "test_size", "train_size", "tokens", "segments")


@dataclass
class ReportFiles:
    json: Path
    markdown: Path
    plots: dict[str, Path] = field(default_factory=dict)


def _version() -> str:
    try:
        return version("embedhub")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def build_json(results: Sequence[TaskResult], models: Sequence[ModelInfo], meta: dict[str, Any]) -> dict:
    return {
        "embedhub": _version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "meta": meta,
        "models": [model.to_json() for model in models],
        "results": [result.to_json() for result in results],
    }


def format_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–"
        if value == int(value) and abs(value) >= 1:
            return str(int(value))
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 10:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


def _ordered_keys(records: Sequence[Record], attribute: str) -> list[str]:
    keys: list[str] = []
    for record in records:
        for key in getattr(record, attribute):
            if key not in keys:
                keys.append(key)
    return keys


def markdown_table(records: Sequence[Record], several_models: bool) -> str:
    """One row per record; columns only for what varies or matters (split, mode, metrics, sizes)."""
    metric_keys = _ordered_keys(records, "metrics")
    info_keys = [key for key in INFO_COLUMNS if any(key in record.info for record in records)]
    columns = ["model"] if several_models else []
    columns.append("dataset")
    if any(record.split for record in records):
        columns.append("split")
    if any(record.mode for record in records):
        columns.append("mode")
    header = [*columns, *metric_keys, *info_keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in records:
        cells = []
        for column in columns:
            cells.append(str(getattr(record, column) or ""))
        cells.extend(format_value(record.metrics.get(key)) for key in metric_keys)
        cells.extend(format_value(record.info.get(key)) for key in info_keys)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def build_markdown(
    results: Sequence[TaskResult],
    models: Sequence[ModelInfo],
    meta: dict[str, Any],
    plots: dict[str, Path],
    plot_labels: dict[str, dict[str, str]],
    base: Path,
) -> str:
    from embedhub.eval.tasks import TASKS

    several = len({result.model for result in results}) > 1 or len(models) > 1
    lines = ["# embedhub evaluation report", ""]
    lines.append(
        f"Created {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by embedhub {_version()}."
    )
    for key, value in meta.items():
        lines.append(f"- {key}: `{value}`")
    lines += [
        "",
        "## Models",
        "",
        "| model | dims | max tokens | instructions | MRL | weights |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        weights = "**random (numbers are meaningless)**" if model.random_weights else "trained"
        lines.append(
            f"| {model.name} | {model.dimensions} | {model.max_tokens} | "
            f"{'yes' if model.instruction_aware else 'no'} | {'yes' if model.mrl else 'no'} | {weights} |"
        )
    order = [name for name in TASKS if any(r.task == name for r in results)]
    for task in order:
        task_results = [result for result in results if result.task == task]
        records = [record for result in task_results for record in result.records]
        summary = TASKS[task].summary
        seconds = ", ".join(f"{r.model} {r.seconds:.1f} s" for r in task_results)
        lines += ["", f"## {task}", "", f"{summary}. Time: {seconds}.", ""]
        if task in plots:
            lines += [f"![{task}]({plots[task].relative_to(base).as_posix()})", ""]
            if plot_labels.get(task):
                mapping = "; ".join(f"{short} = {full}" for full, short in plot_labels[task].items())
                lines += [f"Plot labels: {mapping}.", ""]
        if records:
            lines += [markdown_table(records, several), ""]
        notes = [(result.model, note) for result in task_results for note in result.notes]
        if notes:
            lines.append("Notes:")
            lines += [f"- {model}: {note}" if several else f"- {note}" for model, note in notes]
    return "\n".join(lines).rstrip() + "\n"


# --- plots ---------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    available = {font.name for font in font_manager.fontManager.ttflist}
    cjk = [name for name in CJK_FONTS if name in available]
    if cjk:
        plt.rcParams["font.sans-serif"] = [*cjk, *plt.rcParams["font.sans-serif"]]
    return plt, bool(cjk)


class _Labels:
    """Plot-safe labels: text a font cannot draw becomes `doc-N`, listed under the plot."""

    def __init__(self, cjk_font: bool) -> None:
        self.cjk_font = cjk_font
        self.mapping: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if self.cjk_font or not _NON_ASCII.search(text):
            return text
        if text not in self.mapping:
            self.mapping[text] = f"doc-{len(self.mapping) + 1}"
        return self.mapping[text]


def _curve_label(curve: Curve, model: str, several_models: bool) -> str:
    return f"{model}: {curve.label}" if several_models else curve.label


def plot_curves(task: str, results: Sequence[TaskResult], path: Path) -> dict[str, str]:
    plt, cjk = _pyplot()
    labels = _Labels(cjk)
    several = len({result.model for result in results}) > 1
    panels: dict[str, list[tuple[str, Curve]]] = {}
    for result in results:
        for curve in result.curves:
            panels.setdefault(curve.panel, []).append((result.model, curve))
    count = len(panels)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    many = max(len(curves) for curves in panels.values()) > 8
    width = 5.2 * columns + (2.5 if many else 0)
    figure, axes = plt.subplots(rows, columns, figsize=(width, 3.8 * rows), squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    for axis, (panel, curves) in zip(axes.flat, panels.items(), strict=False):
        xs_seen: set[float] = set()
        for model, curve in curves:
            label = labels(_curve_label(curve, model, several))
            marker = "o" if len(curve.x) <= 12 else None
            if curve.yerr is not None:
                axis.errorbar(curve.x, curve.y, yerr=curve.yerr, label=label, marker=marker, capsize=3)
            else:
                axis.plot(curve.x, curve.y, label=label, marker=marker, linewidth=1.2)
            xs_seen.update(curve.x)
            axis.set_xlabel(curve.xlabel)
            axis.set_ylabel(curve.ylabel)
            if curve.xlog and min(curve.x, default=1) > 0:
                axis.set_xscale("log", base=2)
                ticks = sorted(xs_seen)
                if len(ticks) <= 12:
                    axis.set_xticks(ticks)
                    axis.set_xticklabels([format_value(float(t)) for t in ticks])
        if panel:
            axis.set_title(labels(panel))
        axis.grid(True, alpha=0.3)
        if many:
            axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
        else:
            axis.legend(fontsize=8)
    figure.suptitle(task)
    figure.tight_layout()
    _save(figure, path, plt)
    return labels.mapping


def plot_bars(task: str, results: Sequence[TaskResult], path: Path) -> dict[str, str]:
    plt, cjk = _pyplot()
    labels = _Labels(cjk)
    metric = next((result.headline for result in results if result.headline), None)
    categories: list[str] = []
    values: dict[str, dict[str, float]] = {}
    for result in results:
        for record in result.records:
            if metric not in record.metrics:
                continue
            category = record.dataset + (f" / {record.mode}" if record.mode else "")
            if category not in categories:
                categories.append(category)
            values.setdefault(result.model, {})[category] = record.metrics[metric]
    models = list(values)
    height = max(2.5, 0.32 * len(categories) * max(1, len(models)) + 1.2)
    figure, axis = plt.subplots(figsize=(8, height))
    bar = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        ys = [i + index * bar for i in range(len(categories))]
        xs = [values[model].get(category, float("nan")) for category in categories]
        axis.barh(ys, xs, height=bar, label=model)
    axis.set_yticks([i + bar * (len(models) - 1) / 2 for i in range(len(categories))])
    axis.set_yticklabels([labels(category) for category in categories], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel(metric or "")
    axis.grid(True, axis="x", alpha=0.3)
    if len(models) > 1:
        axis.legend(fontsize=8)
    axis.set_title(f"{task}: {metric}")
    figure.tight_layout()
    _save(figure, path, plt)
    return labels.mapping


def _save(figure, path: Path, plt) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing-glyph warnings: labels are already made safe
        figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_task(task: str, results: Sequence[TaskResult], path: Path) -> tuple[Path | None, dict[str, str]]:
    if any(result.curves for result in results):
        return path, plot_curves(task, results, path)
    if any(result.records for result in results):
        return path, plot_bars(task, results, path)
    return None, {}


def write_report(
    results: Sequence[TaskResult],
    models: Sequence[ModelInfo],
    out: Path,
    meta: dict[str, Any] | None = None,
    plots: bool = True,
) -> ReportFiles:
    """Write results.json, report.md and plots/TASK.png under `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    files = ReportFiles(out / "results.json", out / "report.md")
    labels: dict[str, dict[str, str]] = {}
    if plots:
        for task in dict.fromkeys(result.task for result in results):
            path, mapping = plot_task(
                task, [r for r in results if r.task == task], out / "plots" / f"{task}.png"
            )
            if path is not None:
                files.plots[task] = path
                labels[task] = mapping
    files.json.write_text(
        json.dumps(build_json(results, models, meta), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    files.markdown.write_text(
        build_markdown(results, models, meta, files.plots, labels, out), encoding="utf-8"
    )
    return files
