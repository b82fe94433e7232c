"""An `Encoder` whose forward passes go through a served model's one scheduler.

In a server process, knowledge-base ingestion, knowledge-base search and re-embedding are
synchronous code running on worker threads; given the raw encoder they would run forward passes
beside the request-merging queue (two passes at once on a CPU, no 429, no /metrics, no cache).
This adapter keeps the encoder contract those modules expect, takes the real encoder's spec,
framing ids and tokenizer (so the base class builds exactly the same model inputs), and sends
`embed_token_ids` through the service: the service's cache first, then a thread-safe blocking
submit to its `BatchQueue`.

Interactive work (search) gets `Overloaded` (HTTP 429) when the queue is full, like any request;
background work (`background=True`, ingestion) waits for room instead of failing. `should_stop`
lets a job be cancelled (or the server shut down) while its inputs wait for the model.
The CLI keeps calling its encoder directly: there is no queue to share in a one-shot command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from embedhub.engine.cache import look_up
from embedhub.engine.service import EmbeddingService
from embedhub.models.base import Encoder


class ScheduledEncoder(Encoder):
    def __init__(
        self,
        service: EmbeddingService,
        *,
        background: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.service = service
        self.inner = service.encoder
        self.spec = self.inner.spec
        self.prefix_ids = self.inner.prefix_ids
        self.suffix_ids = self.inner.suffix_ids
        self.cuts_inside_words = self.inner.cuts_inside_words
        self.background = background
        self.should_stop = should_stop

    def with_stop(self, should_stop: Callable[[], bool]) -> ScheduledEncoder:
        """The same adapter for background work that stops when `should_stop()` turns true."""
        return ScheduledEncoder(self.service, background=True, should_stop=should_stop)

    @property
    def vocabulary_size(self) -> int:
        return self.inner.vocabulary_size

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.inner.content_ids(texts)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return self.inner.token_strings(ids)

    def embed_token_ids(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """The service's cache, then the model's queue; never a forward pass on this thread."""
        inputs = [list(ids) for ids in batch]
        cached = look_up(self.service.cache, self.service.encoder, inputs)
        if cached.missing:
            cached.complete(
                self.service.queue.submit_blocking(
                    [inputs[i] for i in cached.missing],
                    wait_when_full=self.background,
                    should_stop=self.should_stop,
                )
            )
        return cached.vectors
