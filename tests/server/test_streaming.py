"""The thread-to-async pump of the answer streams: items in order, an error raised where they are
read, the iterator closed when the reader stops, and a stop once the app's `stopping` flag is set."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from embedhub.engine.queue import QueueStopped
from embedhub.server.streaming import pumped, server_stopping, sse


def _request(stopping: threading.Event) -> SimpleNamespace:
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(stopping=stopping)))


async def _read(items, request, limit=None) -> list:
    read = []
    async for item in pumped(items, request):
        read.append(item)
        if limit is not None and len(read) == limit:
            break
    return read


def test_items_arrive_in_order_and_errors_are_raised_where_they_are_read():
    request = _request(threading.Event())
    assert asyncio.run(_read(iter(range(5)), request)) == [0, 1, 2, 3, 4]

    def failing():
        yield 1
        raise ValueError("the chat endpoint broke")

    with pytest.raises(ValueError, match="broke"):
        asyncio.run(_read(failing(), request))


def test_a_stopping_server_ends_a_silent_stream_and_the_iterator_is_closed():
    stopping, release, closed = threading.Event(), threading.Event(), threading.Event()

    def silent():
        try:
            yield "evidence"
            release.wait(10)  # a chat endpoint that says nothing more
            yield "late"
        finally:
            closed.set()

    async def scenario():
        reader = asyncio.ensure_future(_read(silent(), _request(stopping)))
        await asyncio.sleep(0.2)
        assert not reader.done()
        stopping.set()
        with pytest.raises(QueueStopped, match="shutting down"):
            await reader

    asyncio.run(scenario())
    release.set()
    assert closed.wait(5)
    assert server_stopping(_request(stopping)) and not server_stopping(
        SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace()))
    )
    assert sse("done", {"answer": "北京"}) == 'event: done\ndata: {"answer": "北京"}\n\n'
