"""The history of attempts per AVID: each job's outcome, folded from its events into the index.

Job records (``nassav:job:{id}``) expire a week after they end; this table keeps one row per
job for as long as the library index lives: job id, AVID, kind, when it started and ended, its
status, the last stage it reached, the last message (a warning while it runs, the final
message once it ended) and the source that had the title. The index cannot rebuild it from
the folders, so what the projection never saw (events trimmed off the stream before the
gateway read them, an index dropped for a new schema) is simply not in it.

Folding is written for the projection's at-least-once delivery: :func:`merge` gives the same
row however often an event comes, and in whatever order (the first end stays; the stage and
message of the latest event win; the earliest event's time is the start). A batch of events is
folded per job first (:func:`fold`), so the index reads and writes one row per job and batch,
not one per event. Progress events never count: they are most of the stream and change nothing.

The projection's hot path is a burst of submissions (``queued`` events, which touch no folder):
a write for each small batch would cost a thread hop (~0.1 ms of CPU here) per batch. So
:class:`Recorder` holds attempts that only say "queued" for up to ``delay_s`` and writes them
with the next write; anything else is written before its events are acknowledged. A gateway
killed in that window loses only when those jobs were submitted: the row is made from their
next event instead.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from pipeline import events as ev
from pipeline.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT PRIMARY KEY,
    avid TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    stage_at REAL NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_avid ON attempts (avid, started_at);
"""

ENDED = ("completed", "failed", "cancelled")
_RUNNING = (ev.TASK_STARTED, ev.STAGE_STARTED, ev.WARNING)


@dataclass(slots=True)
class Attempt:
    """One job as far as its events tell; also what one event says of it."""

    job_id: str
    avid: str
    kind: str
    started_at: float
    ended_at: float | None
    status: str  # queued, running, or one of ENDED
    stage: str
    stage_at: float  # when ``stage`` was reported: the latest report wins
    message: str
    source: str

    def as_item(self) -> dict[str, Any]:
        """The API's shape (without the bookkeeping ``stage_at``)."""
        d = dataclasses.asdict(self)
        d.pop("stage_at")
        return d


FIELDS = tuple(f.name for f in dataclasses.fields(Attempt))


def from_event(e: Event) -> Attempt | None:
    """What ``e`` says of its job's attempt; None for events that say nothing (progress, library
    events that belong to no job)."""
    if not e.job_id or not e.avid:
        return None
    d = e.data
    ended = None
    message = ""
    if e.type == ev.QUEUED:
        status = "queued"
    elif e.type in _RUNNING or (e.type == ev.STAGE_FINISHED and e.stage == "resolve"):
        status = "running"
        if e.type == ev.WARNING:
            message = str(d.get("message") or "")
    elif e.type in (ev.TASK_COMPLETED, ev.TASK_FAILED):
        status = str(d.get("status") or ("completed" if e.type == ev.TASK_COMPLETED else "failed"))
        ended, message = e.ts, str(d.get("message") or "")
    else:
        return None  # progress; the other stages' ends (their start said it); what is newer than this
    source = str(d.get("source") or "") if e.type == ev.STAGE_FINISHED and e.stage == "resolve" else ""
    return Attempt(e.job_id, e.avid, str(d.get("kind") or ""), e.ts, ended, status, e.stage, e.ts,
                   message, source)


def merge(old: Attempt | None, new: Attempt) -> Attempt:
    """``old`` updated with ``new`` (one event, or several folded): the same result in any order."""
    if old is None:
        return new
    done = old.status in ENDED
    if done:
        status = old.status
    elif new.status == "queued":  # a redelivered ``queued`` never takes a running job back
        status = old.status
    else:
        status = new.status
    newer_stage = bool(new.stage) and new.stage_at >= old.stage_at
    if done:
        message = old.message
    elif new.ended_at is not None or (new.message and new.stage_at >= old.stage_at):
        message = new.message
    else:
        message = old.message
    return Attempt(old.job_id, old.avid or new.avid, new.kind or old.kind,
                   min(old.started_at, new.started_at),
                   old.ended_at if old.ended_at is not None else new.ended_at, status,
                   new.stage if newer_stage else old.stage, new.stage_at if newer_stage else old.stage_at,
                   message, new.source or old.source)


def fold(events: Iterable[Event]) -> dict[str, Attempt]:
    """The events of one batch, folded per job id."""
    out: dict[str, Attempt] = {}
    for e in events:
        a = from_event(e)
        if a is not None:
            out[a.job_id] = merge(out.get(a.job_id), a)
    return out


class Recorder:
    """Folds the projection's batches and says what to write when (see the module's docstring)."""

    def __init__(self, *, delay_s: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.delay_s, self._clock = delay_s, clock
        self._held: dict[str, Attempt] = {}
        self._since = 0.0

    def add(self, events: Iterable[Event], *, writing: bool = False) -> dict[str, Attempt]:
        """Fold ``events`` in; returns what to write now (everything held) or ``{}`` when the
        batch said only "queued" and nothing is due. ``writing``: the caller writes to the index
        anyway, so the held attempts ride along."""
        urgent = writing
        for job, a in fold(events).items():
            self.hold({job: a})
            urgent = urgent or a.status != "queued"
        return self.take() if urgent or self.due() else {}

    def hold(self, attempts: Mapping[str, Attempt]) -> None:
        """Keep ``attempts`` for a later write (also: put back what a failed write took)."""
        for job, a in attempts.items():
            if not self._held:
                self._since = self._clock()
            self._held[job] = merge(self._held.get(job), a)

    def due(self) -> bool:
        return bool(self._held) and self._clock() - self._since >= self.delay_s

    @property
    def waiting(self) -> bool:
        return bool(self._held)

    def take(self) -> dict[str, Attempt]:
        out, self._held = self._held, {}
        return out


def from_row(r: Mapping[str, Any]) -> Attempt:
    return Attempt(**{f: r[f] for f in FIELDS})


def as_row(a: Attempt) -> tuple[Any, ...]:
    return tuple(getattr(a, f) for f in FIELDS)


REPLACE = f"INSERT OR REPLACE INTO attempts ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"
