"""uvicorn's Server for `embedhub serve`, telling the app of a stop signal at once. uvicorn waits
for open responses to end before it runs the app's shutdown, so the app's event and answer
streams learn of a stop from its `stopping` flag (server/streaming.py), set here. A module of its
own: uvicorn is imported by `serve` only."""

from __future__ import annotations

import threading

import uvicorn


class StoppingServer(uvicorn.Server):
    def __init__(self, stopping: threading.Event, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig, frame) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)
