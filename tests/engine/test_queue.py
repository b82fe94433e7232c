"""The batching queue with several workers: batches really run at once, and every request gets
exactly its own rows back however its inputs were split among the workers."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from embedhub.engine.queue import BatchQueue


def _queue(run, workers: int, **options) -> BatchQueue:
    limits = {"max_batch_tokens": 64, "max_batch_size": 4, "max_queue_items": 10_000} | options
    return BatchQueue(run, width=2, name="test", workers=workers, **limits)


def test_workers_run_batches_at_the_same_time():
    barrier = threading.Barrier(3, timeout=10)

    def run(batch):
        barrier.wait()  # returns only when three batches are running together
        return np.array([[len(ids), 0] for ids in batch], np.float32)

    queue = _queue(run, workers=3, max_batch_size=1)
    queue.start()
    try:
        futures = []
        for length in (1, 2, 3):
            thread_result: dict = {}

            def submit(length=length, thread_result=thread_result):
                thread_result["rows"] = queue.submit_blocking([[0] * length])

            thread = threading.Thread(target=submit)
            thread.start()
            futures.append((length, thread, thread_result))
        for length, thread, result in futures:
            thread.join(timeout=15)
            assert not thread.is_alive(), "a worker never ran: the batches did not run at once"
            assert result["rows"][0][0] == length
    finally:
        queue.stop()


def test_one_worker_never_runs_two_batches_at_once():
    running = []
    peak = []
    lock = threading.Lock()

    def run(batch):
        with lock:
            running.append(1)
            peak.append(len(running))
        threading.Event().wait(0.005)
        with lock:
            running.pop()
        return np.zeros((len(batch), 2), np.float32)

    queue = _queue(run, workers=1, max_batch_size=1)
    queue.start()
    try:
        threads = [threading.Thread(target=queue.submit_blocking, args=([[1], [2]],)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
    finally:
        queue.stop()
    assert max(peak) == 1 and len(peak) == 8


@pytest.mark.parametrize("workers", [1, 4])
def test_requests_split_over_workers_get_their_own_rows(workers):
    def run(batch):
        threading.Event().wait(0.001)
        return np.array([[ids[0], len(ids)] for ids in batch], np.float32)

    queue = _queue(run, workers=workers, max_batch_size=3)

    async def main():
        queue.start()
        requests = [[[request * 100 + slot] * (1 + slot % 5) for slot in range(17)] for request in range(30)]
        answers = await asyncio.gather(*(queue.submit(inputs) for inputs in requests))
        return requests, answers

    try:
        requests, answers = asyncio.run(main())
    finally:
        queue.stop()
    for inputs, rows in zip(requests, answers, strict=True):
        expected = np.array([[ids[0], len(ids)] for ids in inputs], np.float32)
        np.testing.assert_array_equal(rows, expected)


def test_a_queue_needs_a_worker():
    with pytest.raises(ValueError, match="at least one worker"):
        _queue(lambda batch: batch, workers=0)
