"""One served model: encoder + cache + batching queue behind an async, batch-first API.

Tokenisation runs on a worker thread (never on the event loop), cached vectors skip the model,
the rest go through the shared queue, then MRL and normalisation apply per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedhub.engine.cache import EmbeddingCache, look_up
from embedhub.engine.queue import BatchObserver, BatchQueue
from embedhub.errors import InputTooLongError
from embedhub.models.base import Embeddings, Encoder, finish
from embedhub.models.spec import InputKind


@dataclass(frozen=True)
class ServedEmbeddings(Embeddings):
    """Embeddings plus how many inputs were cut to the length limit (reported, never hidden)."""

    truncated_inputs: int = 0


@dataclass(frozen=True)
class ServiceLimits:
    max_batch_tokens: int = 16384
    max_batch_size: int = 64
    max_queue_items: int = 4096
    max_input_tokens: int | None = None  # below the model's own limit, when set


class EmbeddingService:
    def __init__(
        self,
        encoder: Encoder,
        limits: ServiceLimits,
        cache: EmbeddingCache | None = None,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.encoder = encoder
        self.spec = encoder.spec
        self.limits = limits
        self.cache = cache
        self.queue = BatchQueue.for_encoder(
            encoder,
            max_batch_tokens=limits.max_batch_tokens,
            max_batch_size=limits.max_batch_size,
            max_queue_items=limits.max_queue_items,
            on_batch=on_batch,
        )

    @property
    def max_input_tokens(self) -> int:
        own = self.encoder.max_tokens
        return min(own, self.limits.max_input_tokens) if self.limits.max_input_tokens else own

    def start(self) -> None:
        self.queue.start()

    def stop(self) -> None:
        self.queue.stop()
        if self.cache is not None:
            self.cache.close()

    def warm_up(self) -> None:
        """One real forward pass, so the first request does not pay for lazy initialisation. It
        goes through the queue like every other pass: one thread runs this model's passes."""
        self.queue.submit_blocking(self.encoder.tokenize(["warm up"], kind="query"))

    async def embed_texts(
        self,
        texts: Sequence[str],
        *,
        kind: InputKind | str = InputKind.DOCUMENT,
        instruction: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        truncate: bool = False,
    ) -> ServedEmbeddings:
        kind = InputKind.parse(kind)
        size = self.spec.check_dimensions(dimensions)
        inputs, cut = await asyncio.to_thread(self._tokenize_counting, texts, kind, instruction, truncate)
        return await self._embed(inputs, size, normalize, truncate, cut)

    def _tokenize_counting(
        self, texts: Sequence[str], kind: InputKind, instruction: str | None, truncate: bool
    ) -> tuple[list[list[int]], set[int]]:
        """Model inputs, cut to the service's limit, and the indices of those that were cut (a
        long text is tokenised only as far as the limit needs: models/base.py)."""
        return self.encoder.tokenize_with_cuts(
            texts, kind=kind, instruction=instruction, truncate=truncate, limit=self.max_input_tokens
        )

    async def embed_token_ids(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        dimensions: int | None = None,
        normalize: bool = True,
        truncate: bool = False,
    ) -> ServedEmbeddings:
        size = self.spec.check_dimensions(dimensions)
        framed = self.encoder.frame_token_ids(inputs, truncate=truncate)
        cut = {index for index, ids in enumerate(inputs) if self._framed_length(ids) > len(framed[index])}
        return await self._embed(framed, size, normalize, truncate, cut)

    def _framed_length(self, ids: Sequence[int]) -> int:
        """The length `ids` would have once framed, before any cut."""
        encoder = self.encoder
        return len(encoder.unframed(ids)) + len(encoder.prefix_ids) + len(encoder.suffix_ids)

    async def _embed(
        self,
        inputs: list[list[int]],
        size: int,
        normalize: bool,
        truncate: bool,
        cut: set[int] | frozenset[int] = frozenset(),
    ) -> ServedEmbeddings:
        limit = self.max_input_tokens
        if limit < self.encoder.max_tokens:
            cut = cut | {index for index, ids in enumerate(inputs) if len(ids) > limit}
            inputs = [self._limit(ids, index, limit, truncate) for index, ids in enumerate(inputs)]
        raw = await self._raw_vectors(inputs)
        vectors = finish(raw, size, normalize)
        return ServedEmbeddings(vectors, tuple(len(ids) for ids in inputs), truncated_inputs=len(cut))

    def _limit(self, ids: list[int], index: int, limit: int, truncate: bool) -> list[int]:
        if len(ids) <= limit:
            return ids
        if not truncate:
            raise InputTooLongError(index, len(ids), limit)
        suffix = list(self.encoder.suffix_ids)
        return ids[: limit - len(suffix)] + suffix

    async def _raw_vectors(self, inputs: list[list[int]]) -> np.ndarray:
        batch = look_up(self.cache, self.encoder, inputs)
        if batch.missing:
            batch.complete(await self.queue.submit([inputs[i] for i in batch.missing]))
        return batch.vectors
