"""What an evaluation has finished, kept the moment it finishes: `OUT/rows.jsonl`.

Long evaluations are normal (SciFact and CMRC2018 through the knowledge base take most of an hour
on two cores), and a run that is stopped must not lose what it finished. Every finished part (one
dataset and mode of a retrieval-style task, or one whole task for one model) is appended as one
JSON line, flushed and synced, under a key of its configuration: task, model (name, folder,
backend), dimensions, limit, seed, split, dataset, mode, the task's options and the embedhub
version. A later run with the same output folder takes a part whose key is there instead of
computing it again (resuming is the default, since the key changes with anything that changes the
numbers; `--fresh` starts over), and the report is rebuilt from the parts, also after an
interrupt.

The file is append-only: a part computed again (another configuration) adds a line, the newest
line of a key wins, and a line cut short by a crash is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from embedhub.eval.core import Record, TaskResult

ROWS_FILE = "rows.jsonl"
FORMAT = 1


def config_key(config: dict[str, Any]) -> str:
    """A short stable digest of a configuration (JSON with sorted keys)."""
    text = json.dumps(config, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class RunJournal:
    """The parts finished in an output folder, by configuration key."""

    def __init__(self, folder: Path, *, fresh: bool = False) -> None:
        self.path = Path(folder) / ROWS_FILE
        if fresh:
            self.path.unlink(missing_ok=True)
        self._entries: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.skipped_lines += 1  # cut short by a crash or a full disk

    key = staticmethod(config_key)

    def __len__(self) -> int:
        return len(self._entries)

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._entries[entry["key"]] = entry

    # --- one dataset / mode of a task -----------------------------------------------------------
    def records(self, key: str) -> list[Record] | None:
        entry = self._entries.get(key)
        if entry is None or entry.get("kind") != "part":
            return None
        return [Record.from_json(row) for row in entry["records"]]

    def add_records(self, key: str, config: dict[str, Any], records: list[Record]) -> None:
        rows = [record.to_json() for record in records]
        self._append({"format": FORMAT, "kind": "part", "key": key, "config": config, "records": rows})

    # --- a whole task for one model -------------------------------------------------------------
    def result(self, key: str) -> TaskResult | None:
        entry = self._entries.get(key)
        if entry is None or entry.get("kind") != "task":
            return None
        return TaskResult.from_json(entry["result"])

    def add_result(self, key: str, config: dict[str, Any], result: TaskResult) -> None:
        self._append(
            {"format": FORMAT, "kind": "task", "key": key, "config": config, "result": result.to_json()}
        )
