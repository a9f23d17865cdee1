"""The event stream: every stage appends here; the relay and the library index read it.

One capped Redis stream (``nassav:events``). An entry's fields: ``type``, ``avid``,
``job_id``, ``stage``, ``ts`` (epoch seconds) and ``data`` (JSON object). The WebSocket
shape of an event is the old NASSAV client's ``{"type": T, "data": {...}}`` with
``task_id``/``avid`` inside ``data`` and the stream id alongside, so a client can resume.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import redis

STREAM = "nassav:events"

# Types the old client knows, plus the stage events added beside them.
QUEUED = "queued"
TASK_STARTED = "task_started"
PROGRESS = "progress_update"
TASK_COMPLETED = "task_completed"
TASK_FAILED = "task_failed"
STAGE_STARTED = "stage_started"
STAGE_FINISHED = "stage_finished"
WARNING = "warning"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    avid: str
    job_id: str
    stage: str = ""
    ts: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        """The WebSocket / SSE shape."""
        body = {"task_id": self.job_id, "avid": self.avid, "stage": self.stage, "ts": self.ts}
        body.update(self.data)
        return {"type": self.type, "id": self.id, "data": body}

    @classmethod
    def from_entry(cls, entry_id: str, f: Mapping[str, str]) -> "Event":
        try:
            data = json.loads(f.get("data") or "{}")
        except ValueError:
            data = {}
        return cls(id=entry_id, type=f.get("type", ""), avid=f.get("avid", ""),
                   job_id=f.get("job_id", ""), stage=f.get("stage", ""),
                   ts=float(f.get("ts") or 0), data=data)


def encode(type_: str, *, avid: str, job_id: str, stage: str = "",
           data: Mapping[str, Any] | None = None, ts: float | None = None) -> dict[str, str]:
    """Stream fields for one event (also used by Lua scripts that append atomically)."""
    return {"type": type_, "avid": avid, "job_id": job_id, "stage": stage,
            "ts": f"{time.time() if ts is None else ts:.6f}",
            "data": json.dumps(dict(data or {}), separators=(",", ":"), default=str)}


class Events:
    """Append to and read from the event stream (sync client; workers and tools)."""

    def __init__(self, client: redis.Redis, *, stream: str = STREAM, maxlen: int = 100_000):
        self.client, self.stream, self.maxlen = client, stream, maxlen

    def emit(self, type_: str, *, avid: str, job_id: str, stage: str = "",
             data: Mapping[str, Any] | None = None) -> str:
        fields = encode(type_, avid=avid, job_id=job_id, stage=stage, data=data)
        return self.client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    def after(self, last_id: str = "0", count: int = 1000) -> list[Event]:
        """Events strictly after ``last_id`` that are still in the stream."""
        rows = self.client.xrange(self.stream, min=f"({last_id}" if last_id not in ("0", "-") else "-",
                                  count=count)
        return [Event.from_entry(i, f) for i, f in rows]

    def wait(self, last_id: str = "$", block_ms: int = 1000, count: int = 500) -> list[Event]:
        res = self.client.xread({self.stream: last_id}, block=block_ms, count=count)
        return [Event.from_entry(i, f) for _, rows in res or [] for i, f in rows]


def parse_entries(rows: Iterable[tuple[Any, Any]]) -> list[Event]:
    return [Event.from_entry(i, f) for i, f in rows]


class ProgressThrottle:
    """Lets a progress event through at most once per ``min_interval_s``, and always at 100 %."""

    def __init__(self, min_interval_s: float = 1.0, clock=time.monotonic):
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last = float("-inf")
        self._done = False

    def allow(self, percent: float) -> bool:
        if self._done:
            return False
        now = self._clock()
        if percent >= 100.0:
            self._done = True
            self._last = now
            return True
        if now - self._last >= self.min_interval_s:
            self._last = now
            return True
        return False
