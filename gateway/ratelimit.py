"""Wrong API tokens, counted per client address in a sliding window.

A client that sent ``limit`` wrong tokens within ``window_s`` seconds is refused (429) until the
oldest of them leaves the window; while refused, its tokens are not even compared, so guessing
learns nothing. One gateway process, one table in memory: a restart forgets it, which costs an
attacker a restart of the service it cannot reach.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable


class FailureWindow:
    """``limit`` failures per client address within ``window_s`` seconds, then a pause."""

    def __init__(self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000):
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be ≥ 1 and window_s > 0")
        self.limit, self.window_s, self.clock, self.max_clients = limit, window_s, clock, max_clients
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._seen.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[client]
            return None
        return times

    def __len__(self) -> int:
        """Client addresses currently remembered."""
        return len(self._seen)

    def retry_after_s(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it is not paused."""
        now = self.clock()
        times = self._recent(client, now)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[0] + self.window_s - now))

    def fail(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        now = self.clock()
        times = self._recent(client, now)
        if times is None:
            if len(self._seen) >= self.max_clients:
                self._forget_stale(now)
            times = self._seen[client] = deque()
        times.append(now)
        if len(times) > self.limit:
            times.popleft()  # only the newest `limit` matter

    def _forget_stale(self, now: float) -> None:
        for client in list(self._seen):
            self._recent(client, now)
        while len(self._seen) >= self.max_clients:  # a flood of addresses: drop the oldest entries
            del self._seen[next(iter(self._seen))]
