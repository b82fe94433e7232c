"""The blocking side of the model queue: background work waits for room, interactive work gets
`Overloaded`, and a stopped caller's inputs are withdrawn."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from embedhub.engine.queue import BatchQueue, Overloaded, SubmitCancelled
from embedhub.engine.scheduled import ScheduledEncoder
from embedhub.engine.service import EmbeddingService, ServiceLimits
from tests.kb.test_jobs import SlowEncoder


def test_background_submit_waits_for_room_and_interactive_gets_overloaded(tiny_encoder):
    slow = SlowEncoder(tiny_encoder, 0.2)
    queue = BatchQueue.for_encoder(slow, max_batch_tokens=4096, max_batch_size=2, max_queue_items=4)
    queue.start()
    try:
        inputs = tiny_encoder.tokenize([f"text number {i}" for i in range(4)])
        filler = threading.Thread(target=queue.submit_blocking, args=(inputs,))
        filler.start()
        time.sleep(0.05)  # the queue is now full (4 waiting or in the first pass)
        with pytest.raises(Overloaded):
            queue.submit_blocking(inputs)
        more = tiny_encoder.tokenize([f"background {i}" for i in range(10)])  # more than the capacity
        vectors = queue.submit_blocking(more, wait_when_full=True)
        filler.join()
        assert vectors.shape == (10, tiny_encoder.native_dims)
        np.testing.assert_allclose(vectors, tiny_encoder.embed_token_ids(more), rtol=1e-4, atol=1e-5)
    finally:
        queue.stop()


def test_a_stopped_caller_is_withdrawn_from_the_queue(tiny_encoder):
    slow = SlowEncoder(tiny_encoder, 0.3)
    queue = BatchQueue.for_encoder(slow, max_batch_tokens=4096, max_batch_size=1, max_queue_items=100)
    queue.start()
    stop = threading.Event()
    try:
        inputs = tiny_encoder.tokenize([f"item {i}" for i in range(20)])
        threading.Timer(0.1, stop.set).start()
        started = time.monotonic()
        with pytest.raises(SubmitCancelled):
            queue.submit_blocking(inputs, wait_when_full=True, should_stop=stop.is_set)
        assert time.monotonic() - started < 1.0
        time.sleep(0.35)
        assert queue.depth == 0 and slow.calls <= 2
    finally:
        queue.stop()


def test_scheduled_encoder_uses_the_service_cache(tiny_encoder):
    service = EmbeddingService(tiny_encoder, ServiceLimits(), cache=None)
    from embedhub.engine.cache import EmbeddingCache

    service.cache = EmbeddingCache(1 << 20)
    service.start()
    try:
        encoder = ScheduledEncoder(service)
        first = encoder.encode(["a cached query"], kind="query").vectors
        second = encoder.encode(["a cached query"], kind="query").vectors
        np.testing.assert_array_equal(first, second)
        assert service.cache.misses == 1 and service.cache.hits == 1
        direct = tiny_encoder.encode(["a cached query"], kind="query").vectors
        np.testing.assert_allclose(first, direct, rtol=1e-4, atol=1e-5)
    finally:
        service.stop()
