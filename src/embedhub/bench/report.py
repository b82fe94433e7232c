"""The bench report as a Markdown table (ratios first, absolute numbers beside them) and a plot."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any


def _length_cell(row: dict[str, Any]) -> str:
    if not row["capped_at_model_max"]:
        return str(row["length"])
    asked = ", ".join(str(length) for length in row["requested_lengths"] if length != row["length"])
    return f"{row['length']} (model max; asked {asked})"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def markdown(report: dict[str, Any]) -> str:
    """Peaks, then one table of every measured cell, then the peers that did not run."""
    peaks = report["peaks"]["gflops"]
    cpu = report["machine"].get("cpu")
    lines = [
        (
            f"CPU: {cpu['model']}, class {cpu['class']} (flags: {' '.join(cpu['flags']) or 'none'}); "
            "default backend per model chosen for that class"
            if cpu
            else "CPU: not recorded"
        ),
        "",
        "Matmul peaks (GFLOP/s, int8: GOP/s): "
        + (", ".join(f"{name} {value:,.0f}" for name, value in peaks.items()) or "not measured")
        + f"; threads {report['machine']['threads']}; texts: {report['texts']}",
        "",
        "| model | tokens | batch | peer | vs sentence-transformers fp32 | vs fastest Infinity | docs/s "
        "| tokens/s | peak RSS (MB) | share of peak |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {name: index for index, name in enumerate(report["models"])}
    rows = sorted(report["rows"], key=lambda row: (order[row["model"]], row["length"], row["batch_size"]))
    for row in rows:
        ratio, versus_infinity = row["ratio_to_sentence_transformers"], row["ratio_to_fastest_infinity"]
        label = f"**{row['label']}** (default)" if row["default_backend"] else row["label"]
        share = "-" if row["share_of_peak"] is None else f"{row['share_of_peak']:.1%} of {row['precision']}"
        lines.append(
            f"| {row['model']} | {_length_cell(row)} | {row['batch_size']} | {label} "
            f"| {_times(ratio)} | {_times(versus_infinity)} | {_number(row['docs_per_second'], 2)} "
            f"| {_number(row['tokens_per_second'], 0)} | {_number(row['peak_rss_mb'], 0)} "
            f"| {share} |"
        )
    for run in report["runs"]:
        if run["status"] != "ok":
            lines.append(
                f"- {run['model']} / {run.get('label', run['backend'])}: {run['status']} ({run['reason']})"
            )
    if report["peaks"].get("error"):
        lines.append(f"- matmul peaks: failed ({report['peaks']['error']})")
    return "\n".join(lines)


def portable(value: Any) -> Any:
    """The report with this machine's own folders written as placeholders (`$VENV` for the Python
    environment, `.` for the working folder, `~` for the home folder, `$TMPDIR`), so a report kept
    in the repository names the setup, not one machine's paths."""
    prefixes = sorted(
        {
            str(Path(sys.prefix).resolve()): "$VENV",
            str(Path.cwd().resolve()): ".",
            str(Path.home().resolve()): "~",
            str(Path(tempfile.gettempdir()).resolve()): "$TMPDIR",
        }.items(),
        key=lambda item: len(item[0]),
        reverse=True,
    )

    def clean(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: clean(entry) for key, entry in item.items()}
        if isinstance(item, list):
            return [clean(entry) for entry in item]
        if isinstance(item, str):
            for prefix, placeholder in prefixes:
                item = re.sub(re.escape(prefix) + r"(?![\w.-])", placeholder, item)
        return item

    return clean(value)


def plot(report: dict[str, Any], path: Path) -> str:
    """Speed-up over sentence-transformers fp32, one panel per model and batch size; returns a
    sentence saying what was written (or why nothing was: matplotlib is optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return f"no plot: matplotlib is not installed (pip install matplotlib), {path} not written"
    models = list(report["models"])
    batch_sizes = report["options"]["batch_sizes"]
    # one colour per peer across every panel, and one legend for the figure
    colours = {
        label: f"C{index % 10}"
        for index, label in enumerate(dict.fromkeys(r["label"] for r in report["rows"]))
    }
    figure, axes = pyplot.subplots(
        len(models), len(batch_sizes), figsize=(5.5 * len(batch_sizes), 3.6 * len(models)), squeeze=False
    )
    width = 0.8 / max(1, len(colours))
    for row_index, model in enumerate(models):
        for column, batch_size in enumerate(batch_sizes):
            axis = axes[row_index][column]
            cells = [
                row for row in report["rows"] if row["model"] == model and row["batch_size"] == batch_size
            ]
            lengths = sorted({row["length"] for row in cells})
            for index, label in enumerate(colours):
                mine = [row for row in cells if row["label"] == label]
                positions = [lengths.index(row["length"]) + index * width for row in mine]
                ratios = [row["ratio_to_sentence_transformers"] or 0 for row in mine]
                axis.bar(positions, ratios, width, color=colours[label])
            axis.axhline(1.0, color="black", linewidth=0.8)
            axis.set_xticks([position + 0.4 - width / 2 for position in range(len(lengths))])
            capped = {row["length"] for row in cells if row["capped_at_model_max"]}
            axis.set_xticklabels(
                [f"{length} tokens{' (max)' if length in capped else ''}" for length in lengths]
            )
            axis.set_title(f"{model}, batch {batch_size}", fontsize=9)
            axis.set_ylabel("x sentence-transformers fp32")
    handles = [pyplot.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()]
    columns = max(1, min(len(colours), 2 * len(batch_sizes)))
    figure.legend(handles, list(colours), loc="lower center", ncol=columns, fontsize=7)
    legend_rows = -(-len(colours) // columns)
    figure.tight_layout(rect=(0, (0.25 * legend_rows + 0.1) / (3.6 * len(models)), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return f"plot written to {path}"
