"""The `kb add` progress bar (human output). A module of its own so that the ingest machinery
is imported by the commands that ingest, not by `kb list` or `kb --help`."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from embedhub.kb.ingest import Progress


class IngestProgressBar(Progress):
    """Subclasses the ingest `Progress` callbacks, so a callback added there later has a
    do-nothing default here instead of crashing the human output."""

    def __init__(self) -> None:
        self.bar = Bar(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "files  {task.fields[chunks]} chunks  {task.fields[tokens]} tokens  {task.fields[last]}"
            ),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = None
        self.chunks = 0
        self.tokens = 0

    def start(self, files: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("ingest", total=files, chunks=0, tokens=0, last="")

    def stage(self, path: Path, stage: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, last=f"{stage} {path.name[:40]}")

    def file_done(self, outcome) -> None:
        if outcome.status in ("added", "updated"):
            self.chunks += outcome.chunks
            self.tokens += outcome.tokens
        last = Path(outcome.path).name[:40]
        self.bar.update(self.task, advance=1, chunks=self.chunks, tokens=self.tokens, last=last)

    def stop(self) -> None:
        self.bar.stop()
