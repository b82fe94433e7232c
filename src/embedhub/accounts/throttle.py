"""Slowing down password guessing: failed sign-ins are counted per account and per client
address; beyond `max_failures` each further attempt must wait twice as long as the one before
(1 s, 2 s, 4 s, ... at most `window`), and failures older than `window` are forgotten."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class SignInThrottle:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(key, (0, 0.0))
        if count and now - last > self.window:
            self._failures.pop(key, None)
            return 0, 0.0
        return count, last

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds to wait before the next attempt may be checked (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                count, last = self._current(key, now)
                if count >= self.max_failures:
                    delay = min(self.window, 2.0 ** (count - self.max_failures))
                    wait = max(wait, last + delay - now)
        return max(wait, 0.0)

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count, _ = self._current(key, now)
                self._failures[key] = (count + 1, now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
