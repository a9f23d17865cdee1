"""Per-stage history of each job: what every stage did, source by source, folded from events.

``gateway/attempts.py`` keeps one row per job (its outcome); this table keeps one row per job
and stage: when the stage started and ended, its outcome, the source it used, the outcome of
every source it asked (found / not found / blocked / layout changed / blocked by the user,
with the reason), and for the download the bytes and the video's duration. A retry's
``queued`` event also leaves a row (stage ``queued``) saying what was asked.

The per-source outcomes come from the events as the stages already write them: resolve's
``outcomes``, scrape's ``warnings`` and a failed job's ``reasons`` are lines of
``str(SourceError)`` ("jable: not found (HTTP 404, detail)", ``pipeline/errors.py``), which
:func:`source_outcome` reads back.

Folding is idempotent and order-free, for the projection's at-least-once delivery: a row's
start is the earliest ``stage_started`` seen; its end (outcome, source, message, sizes, the
sources' outcomes) is the latest ending event (``stage_finished`` or the job's failure in
that stage), by event time. The upsert (:data:`UPSERT`) does that merge in SQLite, so a batch
needs no read first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pipeline import events as ev
from pipeline.events import Event
from pipeline.jobs import ASKED_FIELDS

SCHEMA = """
CREATE TABLE IF NOT EXISTS history_stages (
    job_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    avid TEXT NOT NULL,
    started_at REAL,
    ended_at REAL,
    outcome TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    bytes INTEGER,
    video_duration_s REAL,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, stage)
);
CREATE INDEX IF NOT EXISTS history_stages_avid ON history_stages (avid);
"""

COLUMNS = ("job_id", "stage", "avid", "started_at", "ended_at", "outcome", "source", "message", "bytes",
           "video_duration_s", "detail")
_ENDED = ("outcome", "source", "message", "bytes", "video_duration_s", "detail")
# The earliest start wins; the latest end brings all of the end's fields (a NULL end loses).
UPSERT = (
    f"INSERT INTO history_stages ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (job_id, stage) DO UPDATE SET "
    "started_at = CASE WHEN history_stages.started_at IS NULL THEN excluded.started_at "
    "  WHEN excluded.started_at IS NULL THEN history_stages.started_at "
    "  ELSE MIN(history_stages.started_at, excluded.started_at) END, "
    + ", ".join(f"{c} = CASE WHEN excluded.ended_at IS NOT NULL AND (history_stages.ended_at IS NULL "
                f"OR excluded.ended_at >= history_stages.ended_at) THEN excluded.{c} ELSE history_stages.{c} END"
                for c in ("ended_at", *_ENDED))
)

# What a ``queued`` event may say beyond its kind (fields a retry or a refresh put on the job).
ASKED = ASKED_FIELDS

# "name: outcome" then optionally " (HTTP 404, detail)": str(SourceError).
_LINE = re.compile(r"^(?P<source>[a-z0-9][a-z0-9_-]*): (?P<outcome>[a-z][a-z ]*?)(?: \((?P<detail>.*)\))?$",
                   re.DOTALL)


def source_outcome(line: object) -> dict[str, str] | None:
    """One source's outcome from a line of ``str(SourceError)``; None for other text."""
    m = _LINE.match(str(line))
    if not m:
        return None
    return {"source": m["source"], "outcome": m["outcome"], "detail": m["detail"] or ""}


def _outcomes(lines: object) -> list[dict[str, str]]:
    if not isinstance(lines, list):
        return []
    return [o for o in map(source_outcome, lines) if o is not None]


@dataclass(slots=True)
class StageRow:
    job_id: str
    stage: str
    avid: str
    started_at: float | None = None
    ended_at: float | None = None
    outcome: str = ""
    source: str = ""
    message: str = ""
    bytes: int | None = None
    video_duration_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> tuple[Any, ...]:
        return (self.job_id, self.stage, self.avid, self.started_at, self.ended_at, self.outcome, self.source,
                self.message, self.bytes, self.video_duration_s,
                json.dumps(self.detail, separators=(",", ":"), sort_keys=True))


def _num(v: Any, kind: type) -> Any:
    try:
        return kind(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def from_event(e: Event) -> StageRow | None:
    """What ``e`` says of one stage of its job; None for events that say nothing of a stage."""
    if not e.job_id or not e.avid or not e.stage:
        return None
    d = e.data
    row = StageRow(e.job_id, e.stage, e.avid)
    if e.type == ev.QUEUED:
        asked = {k: str(d[k]) for k in ASKED if d.get(k)}
        if not asked:
            return None  # a plain submission: the attempt's kind says all (and keeps queued cheap)
        row.ended_at, row.outcome, row.detail = e.ts, "queued", {"kind": str(d.get("kind") or ""), **asked}
        return row
    if e.type == ev.STAGE_STARTED:
        if e.stage == "download-wait":
            return None  # waiting for a slot: the download's own row starts when it has one
        row.started_at = e.ts
        return row
    if e.type == ev.STAGE_FINISHED:
        row.ended_at, row.source = e.ts, str(d.get("source") or d.get("catalogue") or "")
        sources = _outcomes(d.get("outcomes")) + _outcomes(d.get("warnings"))
        if d.get("reused"):
            row.outcome = "reused"
        elif e.stage == "scrape" and not d.get("catalogue"):
            row.outcome = "not found"
        elif e.stage in ("resolve", "re-resolve", "scrape"):
            row.outcome = "found"
        else:
            row.outcome = "done"
        if e.stage == "scrape" and d.get("catalogue") and not d.get("reused"):
            sources.append({"source": str(d["catalogue"]), "outcome": "found", "detail": ""})
        # resolve already lists its winner last ("jable: found"); nothing to add there
        row.bytes = _num(d.get("bytes"), int)
        row.video_duration_s = _num(d.get("duration_s"), float)
        row.detail = {"sources": sources} if sources else {}
        return row
    if e.type == ev.TASK_FAILED:
        row.ended_at, row.outcome = e.ts, str(d.get("status") or "failed")
        row.message = str(d.get("message") or "")
        sources = _outcomes(d.get("reasons"))
        row.detail = {"sources": sources} if sources else {}
        if d.get("error"):
            row.detail["error"] = str(d["error"])
        return row
    return None


def rows(events: Iterable[Event]) -> list[StageRow]:
    """The stage rows a batch of events says something about (the upsert merges repeats)."""
    return [r for r in map(from_event, events) if r is not None]


def item_from_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """The API's shape of one stage: times, ``took_s``, outcome, source, ``sources``, sizes."""
    try:
        detail = json.loads(r["detail"] or "{}")
    except ValueError:
        detail = {}
    started, ended = r["started_at"], r["ended_at"]
    out = {"stage": r["stage"], "started_at": started, "ended_at": ended,
           "took_s": round(ended - started, 3) if started is not None and ended is not None else None,
           "outcome": r["outcome"], "source": r["source"], "message": r["message"],
           "sources": detail.pop("sources", [])}
    if r["bytes"] is not None:
        out["bytes"] = r["bytes"]
    if r["video_duration_s"] is not None:
        out["video_duration_s"] = r["video_duration_s"]
    if detail:
        out["detail"] = detail
    return out
