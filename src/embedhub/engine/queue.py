"""The request-merging queue: concurrent requests share forward passes.

Each request is split into inputs; a worker thread per model takes pending inputs and cuts a batch
by padded tokens (a model whose passes run elsewhere, a remote encoder, gets one worker per request
its endpoints can take at once, so several batches are in flight). The queue knows inputs only by
their length and the model only as a batch call returning `width` floats per input, so embedding
models (a pooled vector per input) and rerankers (a score per (query, document) pair) share it. The
oldest pending input always anchors the next batch (nothing starves) and the batch is filled with
the inputs closest to it in length (little padding). The queue is bounded: over capacity `submit`
raises `Overloaded` at once, which the server turns into HTTP 429, instead of queueing without
bound.

`submit` serves the event loop; `submit_blocking` serves worker threads (knowledge-base ingestion
and search), so every forward pass of a model in a server process runs on this one queue thread.
Background callers pass `wait_when_full=True`: instead of failing, they wait for room (and can be
stopped while waiting or queued through `should_stop`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field

import numpy as np

from embedhub.errors import EmbedhubError
from embedhub.models.base import Encoder


class Overloaded(EmbedhubError):
    """The queue is full; retry later."""


class QueueStopped(EmbedhubError):
    """The queue was shut down while a request waited."""


class SubmitCancelled(EmbedhubError):
    """A blocking submit was withdrawn because its caller asked to stop."""


@dataclass
class _Request:
    loop: asyncio.AbstractEventLoop | None  # None: a thread waits on a concurrent future
    future: asyncio.Future | concurrent.futures.Future
    vectors: np.ndarray
    remaining: int


@dataclass
class _Item:
    ids: Sized  # token ids (or a reranker's PairTokens): the batch plan reads only its length
    request: _Request
    slot: int
    sequence: int = field(default=0)


BatchObserver = Callable[[int, int, float], None]  # items, padded tokens, seconds
#: runs one batch of model inputs: a float32 array of (inputs, width) in input order
BatchRun = Callable[[list], np.ndarray]


class BatchQueue:
    """Merges inputs from concurrent requests into token-budget batches on a worker thread."""

    def __init__(
        self,
        run: BatchRun,
        *,
        width: int,
        name: str,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue_items: int,
        on_batch: BatchObserver | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a batching queue needs at least one worker, not {workers}")
        self.run = run
        self.workers = workers
        self.width = width
        self.name = name
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue_items = max_queue_items
        self.on_batch = on_batch
        self._pending: list[_Item] = []
        self._condition = threading.Condition()
        self._running = False
        self._threads: list[threading.Thread] = []
        self._sequence = 0

    @classmethod
    def for_encoder(cls, encoder: Encoder, **options) -> BatchQueue:
        """The queue of an embedding model: raw pooled vectors of its native size."""
        return cls(
            encoder.embed_token_ids,
            width=encoder.native_dims,
            name=encoder.spec.name,
            workers=encoder.concurrent_batches,
            **options,
        )

    @property
    def depth(self) -> int:
        return len(self._pending)

    def is_overloaded(self, extra: int = 0) -> bool:
        return len(self._pending) + extra > self.max_queue_items

    def start(self) -> None:
        if self._threads:
            return
        self._running = True
        self._threads = [
            threading.Thread(target=self._work, name=f"embedhub-batch-{self.name}-{index}", daemon=True)
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._condition:
            self._running = False
            pending, self._pending = self._pending, []
            self._condition.notify_all()
        for item in pending:
            _fail(item.request, QueueStopped("the server is shutting down"))
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    async def submit(self, inputs: Sequence[Sized]) -> np.ndarray:
        """The model's output rows (an encoder's raw pooled vectors) for complete inputs, in order."""
        loop = asyncio.get_running_loop()
        request = _Request(
            loop,
            loop.create_future(),
            np.empty((len(inputs), self.width), np.float32),
            len(inputs),
        )
        if not inputs:
            return request.vectors
        with self._condition:
            self._enqueue(inputs, request)
        return await request.future

    def submit_blocking(
        self,
        inputs: Sequence[Sized],
        *,
        wait_when_full: bool = False,
        should_stop: Callable[[], bool] | None = None,
        poll_seconds: float = 0.05,
    ) -> np.ndarray:
        """`submit` for a worker thread (never the event loop's). With `wait_when_full`, a full
        queue makes the caller wait for room instead of raising `Overloaded`; a request larger
        than the whole queue is sent in slices. `should_stop` is polled while waiting: when it
        turns true the caller's queued inputs are withdrawn and `SubmitCancelled` is raised (a
        forward pass already running finishes; its result is dropped)."""
        if wait_when_full and len(inputs) > self.max_queue_items:
            step = self.max_queue_items
            parts = [
                self.submit_blocking(
                    inputs[start : start + step],
                    wait_when_full=True,
                    should_stop=should_stop,
                    poll_seconds=poll_seconds,
                )
                for start in range(0, len(inputs), step)
            ]
            return np.concatenate(parts)
        request = _Request(
            None,
            concurrent.futures.Future(),
            np.empty((len(inputs), self.width), np.float32),
            len(inputs),
        )
        if not inputs:
            return request.vectors
        while True:
            if should_stop is not None and should_stop():
                raise SubmitCancelled("stopped before the inputs were queued")
            with self._condition:
                try:
                    self._enqueue(inputs, request)
                    break
                except Overloaded:
                    if not wait_when_full:
                        raise
            time.sleep(poll_seconds)
        while True:
            try:
                return request.future.result(timeout=poll_seconds)
            except concurrent.futures.TimeoutError:
                if should_stop is not None and should_stop():
                    self._withdraw(request)
                    raise SubmitCancelled("stopped while the inputs waited for the model") from None

    def _enqueue(self, inputs: Sequence[Sized], request: _Request) -> None:
        """Queue a request's inputs (the caller holds the condition)."""
        if not self._running:
            raise QueueStopped("the batching queue is not running")
        if len(inputs) > self.max_queue_items:
            raise Overloaded(
                f"a request of {len(inputs)} inputs exceeds the queue capacity of {self.max_queue_items}"
            )
        if self.is_overloaded(len(inputs)):
            raise Overloaded(
                f"the server is at capacity ({len(self._pending)} inputs queued, limit "
                f"{self.max_queue_items}); retry shortly"
            )
        for slot, ids in enumerate(inputs):
            self._sequence += 1
            self._pending.append(_Item(ids, request, slot, self._sequence))
        self._condition.notify()

    def _withdraw(self, request: _Request) -> None:
        with self._condition:
            self._pending = [item for item in self._pending if item.request is not request]
            request.remaining = -1

    def _next_batch(self) -> list[_Item]:
        """Oldest item plus the items nearest to it in length, within the token budget."""
        anchor = self._pending[0]
        by_length = sorted(self._pending, key=lambda item: (len(item.ids), item.sequence))
        position = by_length.index(anchor)
        chosen = [anchor]
        width = len(anchor.ids)
        left, right = position - 1, position + 1
        while len(chosen) < self.max_batch_size:
            candidates = []
            if left >= 0:
                candidates.append((len(anchor.ids) - len(by_length[left].ids), "left"))
            if right < len(by_length):
                candidates.append((len(by_length[right].ids) - len(anchor.ids), "right"))
            if not candidates:
                break
            _, side = min(candidates)
            item = by_length[left] if side == "left" else by_length[right]
            new_width = max(width, len(item.ids))
            if new_width * (len(chosen) + 1) > self.max_batch_tokens:
                if side == "right":
                    right = len(by_length)  # longer items only get wider: stop that side
                    continue
                break
            chosen.append(item)
            width = new_width
            if side == "left":
                left -= 1
            else:
                right += 1
        taken = {id(item) for item in chosen}
        self._pending = [item for item in self._pending if id(item) not in taken]
        return chosen

    def _work(self) -> None:
        while True:
            with self._condition:
                while self._running and not self._pending:
                    self._condition.wait()
                if not self._running:
                    return
                batch = self._next_batch()
                if self._pending:
                    self._condition.notify()  # another worker (if any) takes the rest
            started = time.perf_counter()
            try:
                vectors = np.asarray(self.run([item.ids for item in batch]), dtype=np.float32)
                vectors = vectors.reshape(len(batch), self.width)
            except Exception as error:
                with self._condition:
                    for request in {id(item.request): item.request for item in batch}.values():
                        _fail(request, error)
                continue
            elapsed = time.perf_counter() - started
            if self.on_batch is not None:
                self.on_batch(len(batch), max(len(item.ids) for item in batch) * len(batch), elapsed)
            with self._condition:  # several workers may finish parts of one request at once
                for item, vector in zip(batch, vectors, strict=True):
                    request = item.request
                    request.vectors[item.slot] = vector
                    request.remaining -= 1
                    if request.remaining == 0:
                        _deliver(request, request.vectors)


def _resolve(future: asyncio.Future, value: np.ndarray) -> None:
    if not future.done():
        future.set_result(value)


def _reject(future: asyncio.Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _deliver(request: _Request, vectors: np.ndarray) -> None:
    if request.loop is None:
        if not request.future.done():
            request.future.set_result(vectors)
    else:
        request.loop.call_soon_threadsafe(_resolve, request.future, vectors)


def _fail(request: _Request, error: BaseException) -> None:
    request.remaining = -1
    if request.loop is None:
        if not request.future.done():
            request.future.set_exception(error)
    else:
        request.loop.call_soon_threadsafe(_reject, request.future, error)
