"""Per-source health: consecutive blocked/error outcomes put a source in back-off.

Like Radarr's indexers: the back-off grows with each consecutive failure (5 min, 15 min,
30 min, 1 h, 3 h, 6 h, 12 h, capped at 24 h) and one success clears it. "Not found" is a
healthy answer (the site works; it just lacks the title). One isolated failure does not
sideline a source: back-off starts at the second failure in a row. State lives in Redis,
shared by every worker: ``nassav:source:{name}`` hashes.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

import redis

PREFIX = "nassav:source:"
BACKOFF_S = (0, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
HEALTHY_OUTCOMES = ("found", "not found", "probe ok")
NEUTRAL_OUTCOMES = ("skipped",)


def key(name: str) -> str:
    return PREFIX + name


def backoff_s(failures: int) -> int:
    """Seconds of back-off after ``failures`` consecutive failures."""
    if failures <= 1:
        return 0
    return BACKOFF_S[min(failures - 1, len(BACKOFF_S) - 1)]


def decode(h: Mapping[str, str], name: str, now: float | None = None) -> dict[str, Any]:
    """A health hash as the API shows it."""
    now = time.time() if now is None else now
    retry_at = float(h.get("retry_at") or 0)
    failures = int(h.get("failures") or 0)
    state = "backoff" if retry_at > now else ("failing" if failures else "ok")
    if not h:
        state = "unknown"
    return {"name": name, "state": state, "failures": failures,
            "last_outcome": h.get("last_outcome", ""), "last_detail": h.get("last_detail", ""),
            "last_at": float(h.get("last_at") or 0) or None,
            "last_success_at": float(h.get("last_success_at") or 0) or None,
            "retry_at": retry_at if retry_at > now else None}


# The event a source going into back-off (``state: backoff``) or out of it (``state: ok``)
# appends when SourceHealth is given an event stream; notifications match on it.
HEALTH_EVENT = "source_health"
# Swap the announced side (backoff / ok) and return the one before: two workers recording
# at once announce a flip once.
_ANNOUNCE = """
local old = redis.call('HGET', KEYS[1], 'announced')
redis.call('HSET', KEYS[1], 'announced', ARGV[1])
return old
"""


class SourceHealth:
    def __init__(self, client: redis.Redis, events: Any = None):
        """``events``: a :class:`pipeline.events.Events` to announce back-off flips on, or None."""
        self.client = client
        self.events = events
        self._announce = client.register_script(_ANNOUNCE) if events is not None else None

    def record(self, name: str, outcome: str, detail: str = "") -> dict[str, Any]:
        """Note one outcome (``found``, ``not found``, ``blocked``, ``upstream error``, …)."""
        if outcome in NEUTRAL_OUTCOMES:
            return self.get(name)
        now = time.time()
        k = key(name)
        if outcome in HEALTHY_OUTCOMES:
            self.client.hset(k, mapping={"failures": 0, "retry_at": 0, "last_outcome": outcome,
                                         "last_detail": detail[:300], "last_at": now,
                                         "last_success_at": now})
        else:
            failures = int(self.client.hincrby(k, "failures", 1))
            wait = backoff_s(failures)
            self.client.hset(k, mapping={"retry_at": now + wait if wait else 0, "last_outcome": outcome,
                                         "last_detail": detail[:300], "last_at": now})
        state = self.get(name)
        if self._announce is not None:
            self._announce_flip(name, state)
        return state

    def _announce_flip(self, name: str, state: dict[str, Any]) -> None:
        side = "backoff" if backoff_s(state["failures"]) > 0 else "ok"
        before = self._announce(keys=[key(name)], args=[side]) or "ok"
        if before != side:
            self.events.emit(HEALTH_EVENT, avid="", job_id="", stage="resolve",
                             data={"source": name, "state": side, "previous": before,
                                   "failures": state["failures"], "retry_at": state["retry_at"],
                                   "detail": state["last_detail"] or state["last_outcome"]})

    def get(self, name: str) -> dict[str, Any]:
        return decode(self.client.hgetall(key(name)), name)

    def in_backoff(self, names: Iterable[str]) -> set[str]:
        return {n for n in names if self.get(n)["state"] == "backoff"}

    def due_for_probe(self, names: Iterable[str]) -> list[str]:
        """Sources that failed lately and whose back-off has run out."""
        return [n for n in names if self.get(n)["state"] == "failing"]

    def clear(self, name: str) -> None:
        self.client.delete(key(name))
