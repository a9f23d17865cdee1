"""The record of one import job in Redis, and its events.

``nassav:import:{id}`` is a hash: ``status`` (queued, running, completed, failed), ``path``,
``mode``, ``dry_run``, ``done``/``total`` files, ``counts`` and ``report`` (JSON: the plan's
items with what became of each), ``message``. Progress goes on the event stream as
``import_progress`` events (``job_id`` = the import's id, ``stage`` = ``import``), and the end
as ``import_finished``; finished records expire after a week.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Mapping

PREFIX = "nassav:import:"
FINISHED_TTL_S = 7 * 24 * 3600
PROGRESS = "import_progress"
FINISHED = "import_finished"
STAGE = "import"


def key(import_id: str) -> str:
    return PREFIX + import_id


def new_id() -> str:
    return "imp-" + uuid.uuid4().hex[:16]


def initial(path: str, mode: str, dry_run: bool) -> dict[str, str]:
    """The fields of a queued import."""
    now = f"{time.time():.3f}"
    return {"status": "queued", "path": path, "mode": mode, "dry_run": "1" if dry_run else "0",
            "done": "0", "total": "0", "created_at": now, "updated_at": now, "message": ""}


def view(import_id: str, h: Mapping[str, str]) -> dict[str, Any]:
    """The API's shape of a record (``report`` and ``counts`` decoded)."""
    def js(name: str, default: Any) -> Any:
        try:
            return json.loads(h.get(name) or "")
        except ValueError:
            return default
    return {"import_id": import_id, "status": h.get("status", ""), "path": h.get("path", ""),
            "mode": h.get("mode", ""), "dry_run": h.get("dry_run") == "1",
            "done": int(h.get("done") or 0), "total": int(h.get("total") or 0),
            "counts": js("counts", {}), "items": js("report", []), "message": h.get("message", ""),
            "created_at": float(h.get("created_at") or 0), "updated_at": float(h.get("updated_at") or 0)}
