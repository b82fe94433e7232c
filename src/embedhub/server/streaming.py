"""Streaming responses: a blocking iterator (an answer from a chat endpoint) handed to the event
loop from a thread of its own, Server-Sent Event framing, and whether the server is stopping.

`app.state.stopping` is the app's one shutdown flag: its lifespan sets it when the application
shuts down, and `embedhub serve` sets it as soon as a stop signal arrives (uvicorn waits for open
responses to end before it runs the application's shutdown, so a stream that waited for the
lifespan alone would hold a graceful shutdown up until its client left)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from typing import TypeVar

from starlette.requests import Request

from embedhub.engine.queue import QueueStopped

T = TypeVar("T")


def server_stopping(request: Request) -> bool:
    """Whether the server is shutting down (see the module docstring)."""
    stopping = getattr(request.app.state, "stopping", None)
    return stopping is not None and stopping.is_set()


def sse(name: str, data: dict) -> str:
    """One Server-Sent Event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def pumped(items: Iterator[T], request: Request, name: str = "pump") -> AsyncIterator[T]:
    """`items`, produced on a thread of their own: a chat endpoint may keep a stream waiting for
    minutes, which must hold neither the event loop nor the shared thread pool. An exception in
    the iterator is raised here (never a dropped stream). Stops (closing the iterator) when the
    consumer stops or the server shuts down (QueueStopped)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    finished = object()

    def put(item) -> None:
        with suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        try:
            for item in items:
                put(item)
                if stop.is_set():
                    break
        except Exception as error:  # reaches the consumer as the exception, never a dropped stream
            put(error)
        finally:
            with suppress(Exception):
                items.close()  # type: ignore[attr-defined]
            put(finished)

    threading.Thread(target=pump, name=name, daemon=True).start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                if server_stopping(request):
                    raise QueueStopped("the server is shutting down; ask again once it is back") from None
                continue
            if item is finished:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
