"""What a notification says: fields taken from one event, a target's template filled with them.

Pure functions, no I/O: the title of the AVID is looked up by the caller (it reads the
library) and handed in. A template names fields as ``{avid}``; which ones exist is
``pipeline.config.TEMPLATE_FIELDS`` (the config refuses any other), and a value is put in as
text, never interpreted, so a title holding ``{`` cannot reach another field.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import quote

from pipeline.config import NotifyTemplate
from pipeline.events import Event

_FIELD = re.compile(r"\{([a-z_]+)\}")
SOURCE_HEALTH = "source_health"
IMPORT_FINISHED = "import_finished"  # pipeline.import_jobs.FINISHED


def reason_of(e: Event) -> str:
    """Why it happened, in one line: a failure's reasons, a source's last error, a disk's state."""
    d = e.data
    reasons = d.get("reasons")
    if isinstance(reasons, list) and reasons:
        return "; ".join(str(r) for r in reasons)
    if e.type == IMPORT_FINISHED and d.get("status") == "completed":
        return import_left(d)
    # A completion's message ("ABC-123 done") is no reason.
    keys = ("reason", "detail") if e.type == "task_completed" else ("reason", "detail", "message")
    for key in keys:
        if d.get(key):
            return str(d[key])
    return ""


def summary_of(e: Event) -> str:
    d, avid = e.data, e.avid
    if e.type == "task_completed":
        return f"{avid} is in the library"
    if e.type == "task_failed":
        return f"{avid} {d.get('status') or 'failed'}"
    if e.type == SOURCE_HEALTH:
        state = d.get("state")
        return f"source {d.get('source')} is " + ("backing off" if state == "backoff" else "healthy again")
    if e.type == "disk_low":
        return "disk space is low"
    if e.type == "disk_ok":
        return "disk space is back"
    if e.type == "notify_test":
        return "a test notification"
    if e.type == IMPORT_FINISHED:
        return import_summary(d)
    if e.type == "subscription_found":
        return f"{avid or 'a new title'} found" + (f" by {d.get('name')}" if d.get("name") else "")
    return f"{e.type} {avid}".strip()


def _counts(d: Mapping[str, Any]) -> dict[str, int]:
    counts = d.get("counts")
    if not isinstance(counts, dict):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}


def import_summary(d: Mapping[str, Any]) -> str:
    """One import run in a line: "import of /old finished: 12 imported, 1 conflict, 3 left"."""
    run = f"import of {d['path']}" if d.get("path") else "import"
    if d.get("status") != "completed":
        return f"{run} failed"
    c = _counts(d)
    left = c.get("duplicate", 0) + c.get("skipped", 0)
    conflicts = c.get("conflict", 0)
    parts = [f"{c.get('place', 0)} imported", f"{conflicts} conflict" + ("" if conflicts == 1 else "s"),
             f"{left} left"]
    if c.get("done"):
        parts.append(f"{c['done']} already imported")
    return f"{run} finished: " + ", ".join(parts)


def import_left(d: Mapping[str, Any]) -> str:
    """Why files stayed where they were, counted, and where each file's reason is read."""
    c = _counts(d)
    why = [f"{c[k]} {k}" for k in ("conflict", "duplicate", "skipped") if c.get(k)]
    if not why:
        return ""
    where = f" (each file's reason: GET /api/library/import/{d['import_id']})" if d.get("import_id") else ""
    return "left where they were: " + ", ".join(why) + where


def fields_of(e: Event, *, title: str = "", public_url: str = "") -> dict[str, str]:
    """Every template field for ``e`` (TEMPLATE_FIELDS), as text."""
    cover = ""
    if public_url and e.avid:
        cover = f"{public_url.rstrip('/')}/api/resource/cover?avid={quote(e.avid)}"
    d = e.data
    out = {"summary": summary_of(e), "event": e.type, "avid": e.avid, "title": title, "reason": reason_of(e),
           "cover_url": cover, "source": str(d.get("source") or ""),
           "state": str(d.get("state") or d.get("status") or ""), "message": str(d.get("message") or ""),
           "job_id": e.job_id}
    return out


def render(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with each ``{field}`` replaced; lines left empty by a blank field are dropped."""
    filled = _FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), text)
    return "\n".join(line for line in filled.splitlines() if line.strip())


def message(template: NotifyTemplate, fields: Mapping[str, str]) -> tuple[str, str]:
    """``(title, body)`` of a notification."""
    return render(template.title, fields), render(template.body, fields)


def webhook_payload(e: Event, delivery_id: str, title: str, body: str,
                    fields: Mapping[str, str]) -> dict[str, Any]:
    """The JSON a webhook receives."""
    return {"delivery_id": delivery_id, "event": e.type, "event_id": e.id, "avid": e.avid, "job_id": e.job_id,
            "ts": e.ts, "title": title, "message": body, "fields": dict(fields), "data": dict(e.data)}
