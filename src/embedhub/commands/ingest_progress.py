"""The `kb add` progress bar (human output). A module of its own so that the ingest machinery
is imported by the commands that ingest, not by `kb list` or `kb --help`."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from embedhub.kb.ingest import Progress
from embedhub.kb.rate import RateMeter


def format_rate(chunks_per_second: float | None) -> str:
    if chunks_per_second is None:
        return ""
    return (
        f"{chunks_per_second:.1f} chunks/s"
        if chunks_per_second < 100
        else f"{chunks_per_second:.0f} chunks/s"
    )


class IngestProgressBar(Progress):
    """Subclasses the ingest `Progress` callbacks, so a callback added there later has a
    do-nothing default here instead of crashing the human output.

    The bar counts files, and the file being embedded counts by the share of it done (reported
    after every embedding call inside it), so one large file moves the bar, the percentage, the
    chunks/s and the time left while it is embedded, not only when it is finished."""

    def __init__(self) -> None:
        self.bar = Bar(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn(
                "{task.fields[files_done]}/{task.total:.0f} files  {task.fields[chunks]} chunks  "
                "{task.fields[rate]}  {task.fields[last]}"
            ),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = None
        self.chunks = 0
        self.tokens = 0
        self.files_done = 0
        self.current = 0  # chunks of the file being embedded
        self.meter = RateMeter()

    def start(self, files: int) -> None:
        self.meter.restart()
        self.bar.start()
        self.task = self.bar.add_task(
            "ingest", total=max(1, files), chunks=0, tokens=0, last="", files_done=0, rate=""
        )

    def stage(self, path: Path, stage: str) -> None:
        if self.task is not None:
            self.current = 0
            self.bar.update(self.task, last=f"{stage} {path.name[:40]}")

    def embedded(self, path: Path, chunks: int, fraction: float) -> None:
        if self.task is None:
            return
        self.current = chunks
        done = self.chunks + chunks
        estimate = self.meter.estimate(done, 1.0)
        self.bar.update(
            self.task,
            completed=self.files_done + min(1.0, fraction),
            chunks=done,
            rate=format_rate(estimate.chunks_per_second),
            last=f"embedding {path.name[:40]} {fraction:.1%}",
        )

    def file_done(self, outcome) -> None:
        if outcome.status in ("added", "updated"):
            self.chunks += outcome.chunks
            self.tokens += outcome.tokens
        self.files_done += 1
        self.current = 0
        last = Path(outcome.path).name[:40]
        estimate = self.meter.estimate(self.chunks, 1.0)
        self.bar.update(
            self.task,
            completed=self.files_done,
            files_done=self.files_done,
            chunks=self.chunks,
            tokens=self.tokens,
            rate=format_rate(estimate.chunks_per_second),
            last=last,
        )

    def stop(self) -> None:
        self.bar.stop()
