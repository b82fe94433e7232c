"""One served reranker: tokenisation on a worker thread, then the same request-merging queue as
the embedding models (engine/queue.py), so pairs from concurrent /v1/rerank requests and from
knowledge-base searches share forward passes, length-sorted within a token budget.

`ScheduledReranker` is the knowledge base's view of it (kb/search.py's `PassageScorer`: `name` and
`score(query, passages)`), whose forward passes go through the queue like every other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedhub.engine.queue import BatchObserver, BatchQueue
from embedhub.engine.service import ServiceLimits
from embedhub.models.reranker import PairTokens, Reranker


@dataclass(frozen=True)
class RerankScores:
    """One score per document (input order), the tokens each pair used, and how many were cut."""

    scores: np.ndarray
    token_counts: tuple[int, ...]
    truncated_inputs: int = 0

    @property
    def prompt_tokens(self) -> int:
        return int(sum(self.token_counts))


class RerankService:
    def __init__(
        self, reranker: Reranker, limits: ServiceLimits, on_batch: BatchObserver | None = None
    ) -> None:
        self.reranker = reranker
        self.spec = reranker.spec
        self.limits = limits
        self.queue = BatchQueue(
            reranker.score_inputs,
            width=1,
            name=f"rerank-{reranker.name}",
            max_batch_tokens=limits.max_batch_tokens,
            max_batch_size=limits.max_batch_size,
            max_queue_items=limits.max_queue_items,
            on_batch=on_batch,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_input_tokens(self) -> int:
        own = self.reranker.max_tokens
        return min(own, self.limits.max_input_tokens) if self.limits.max_input_tokens else own

    def start(self) -> None:
        self.queue.start()

    def stop(self) -> None:
        self.queue.stop()

    def warm_up(self) -> None:
        """One real forward pass through the queue, so the first request pays no lazy set-up."""
        self.queue.submit_blocking(self._tokenize("warm up", ["warm up"], None, True))

    def _tokenize(
        self, query: str, documents: Sequence[str], instruction: str | None, truncate: bool
    ) -> list[PairTokens]:
        return self.reranker.tokenize_pairs(
            query, documents, instruction=instruction, truncate=truncate, max_tokens=self.max_input_tokens
        )

    async def rerank(
        self, query: str, documents: Sequence[str], *, instruction: str | None = None, truncate: bool = False
    ) -> RerankScores:
        pairs = await asyncio.to_thread(self._tokenize, query, documents, instruction, truncate)
        scores = await self.queue.submit(pairs)
        return self._result(pairs, scores)

    def rerank_blocking(
        self, query: str, documents: Sequence[str], *, instruction: str | None = None, truncate: bool = True
    ) -> RerankScores:
        """`rerank` for worker threads (knowledge-base search); a full queue raises `Overloaded`."""
        pairs = self._tokenize(query, documents, instruction, truncate)
        return self._result(pairs, self.queue.submit_blocking(pairs))

    @staticmethod
    def _result(pairs: list[PairTokens], scores: np.ndarray) -> RerankScores:
        return RerankScores(
            np.asarray(scores, dtype=np.float32).reshape(-1),
            tuple(len(pair) for pair in pairs),
            sum(1 for pair in pairs if pair.truncated),
        )


class ScheduledReranker:
    """kb/search.py's `PassageScorer` on a served reranker: scores come through its queue."""

    def __init__(self, service: RerankService) -> None:
        self.service = service
        self.name = service.name

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        return [float(value) for value in self.service.rerank_blocking(query, passages).scores]
