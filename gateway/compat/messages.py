"""The old client's queue and task messages, made from nassav's job records and events.

Pure functions, no I/O. The old server had one kind of task, a download, and called it
"started" only once it held the global download lock; nassav also runs metadata jobs (add,
refresh) and a download job first runs resolve, scrape and cover. So, for the old client:

- only jobs of kind ``download`` exist (a metadata job never shows as a task);
- a download job is *active* (``state: STARTED``) while it holds a download slot (its record
  has ``slot_since``), and *pending* (``state: PENDING``) before that;
- ``task_started`` is the moment it takes the slot (nassav's ``stage_started`` of the
  ``download`` stage), not the start of its first stage.
"""

from __future__ import annotations

from typing import Any, Mapping

from pipeline import events as ev, jobs as jobstates

DOWNLOAD = "download"
QUEUE_STATUS = "queue_status"
TASK_EVENTS = (ev.TASK_STARTED, ev.TASK_COMPLETED, ev.TASK_FAILED)


def holds_slot(job: Mapping[str, str]) -> bool:
    """True while a download job is downloading (it took a slot), not waiting or in an earlier stage."""
    return job.get("status") == jobstates.RUNNING and bool(job.get("slot_since"))


def _number(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def queue_item(job: Mapping[str, str]) -> dict[str, Any]:
    """One task of the old queue: ``progress`` is ``{percent, speed, eta}`` on an active task
    (the client reads ``progress.percent`` and ``progress.speed``)."""
    item: dict[str, Any] = {"task_id": job.get("job_id", ""), "avid": job.get("avid", ""),
                            "task_type": DOWNLOAD, "created_at": _number(job.get("created_at"))}
    if holds_slot(job):
        item.update(state="STARTED", time_start=_number(job.get("slot_since")),
                    progress={"percent": _number(job.get("percent")), "speed": job.get("speed", ""),
                              "eta": job.get("eta", "")})
    else:
        item["state"] = "PENDING"
    return item


def old_queue(jobs: list[Mapping[str, str]]) -> dict[str, Any]:
    """The old ``queue_status`` data from nassav's live job records (oldest first).

    ``scheduled_tasks``/``reserved_tasks`` are the names the generation before v1.3 read for
    the waiting tasks; they are the same list as ``pending_tasks``, and empty."""
    items = [queue_item(j) for j in jobs if j.get("kind") == DOWNLOAD]
    active = [i for i in items if i["state"] == "STARTED"]
    pending = [i for i in items if i["state"] == "PENDING"]
    return {"active_tasks": active, "pending_tasks": pending, "active_count": len(active),
            "pending_count": len(pending), "total_count": len(items),
            "scheduled_tasks": pending, "reserved_tasks": []}


def kind_in(event: ev.Event) -> str:
    """The job kind an event itself tells ("" when it does not): ``queued`` and
    ``task_started`` carry it; only download jobs have a ``download`` stage or progress."""
    kind = event.data.get("kind") if isinstance(event.data, Mapping) else None
    if isinstance(kind, str) and kind:
        return kind
    if event.type == ev.PROGRESS or (event.type == ev.STAGE_STARTED and event.stage == DOWNLOAD):
        return DOWNLOAD
    return ""


def translate(event: ev.Event, kind: str) -> tuple[dict[str, Any] | None, bool]:
    """The old client's message for one event of a job of ``kind`` (None for none), and
    whether the old queue changed with it (then a ``queue_status`` must follow)."""
    if kind != DOWNLOAD or not event.job_id:
        return None, False
    d = event.data if isinstance(event.data, Mapping) else {}
    base = {"task_id": event.job_id, "avid": event.avid}
    if event.type == ev.QUEUED:
        return None, True
    if event.type == ev.STAGE_STARTED and event.stage == DOWNLOAD:
        return {"type": ev.TASK_STARTED, "data": {**base, "status": "started"}}, True
    if event.type == ev.PROGRESS:
        return {"type": ev.PROGRESS, "data": {**base, "percent": _number(str(d.get("percent", 0))),
                                              "speed": str(d.get("speed", "")), "eta": str(d.get("eta", ""))}}, False
    message = str(d.get("message", ""))
    if event.type == ev.TASK_COMPLETED:
        return {"type": ev.TASK_COMPLETED, "data": {**base, "status": "success", "message": message}}, True
    if event.type == ev.TASK_FAILED:
        # The client toasts ``error``; nassav's own ``error`` is an exception's class name.
        status = "cancelled" if d.get("status") == jobstates.CANCELLED else "failed"
        return {"type": ev.TASK_FAILED, "data": {**base, "status": status, "message": message,
                                                 "error": message or status}}, True
    return None, False
