"""How fast an ingest goes and how long it has left, from what it has done so far: what the
job's progress (the web UI) and `kb add`'s bar show beside the fraction, so a large file whose bar
moves by a fraction of a percent per batch still shows that it is moving and when it will end."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    #: chunks embedded per second since the embedding started
    chunks_per_second: float | None
    #: seconds left at that pace (None until something is done)
    seconds_left: float | None
    #: the document's chunks, estimated from the share of its text the chunks so far cover
    chunks_total: int | None


class RateMeter:
    """Chunks per second and time left of one document, from (chunks done, fraction done) samples."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.started = clock()

    def restart(self) -> None:
        self.started = self.clock()

    def estimate(self, chunks: int, fraction: float) -> Estimate:
        elapsed = self.clock() - self.started
        if elapsed <= 0 or chunks <= 0 or fraction <= 0:
            return Estimate(None, None, None)
        fraction = min(1.0, fraction)
        return Estimate(
            chunks_per_second=round(chunks / elapsed, 2),
            seconds_left=round(elapsed * (1 - fraction) / fraction, 1),
            chunks_total=max(chunks, round(chunks / fraction)),
        )
