"""Free space of the library's disk against the ``download.min_free_gb`` threshold.

:class:`DiskSpace` reads the real free space (``shutil.disk_usage``) every time; its threshold
is a plain attribute, so a test (or an operator's tool) can set it above the real free space
to see the pause and lower it again to see the resume, with real files on a real disk.
:class:`DiskAlarm` turns readings into ``disk_low`` / ``disk_ok`` events once per change
across every worker (the last state is kept in Redis).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import redis

from pipeline.events import Events

__all__ = ["DISK_LOW", "DISK_OK", "DiskAlarm", "DiskReading", "DiskSpace", "gb"]

DISK_LOW = "disk_low"
DISK_OK = "disk_ok"
STATE_KEY = "nassav:disk:state"
GB = 10 ** 9


def gb(n_bytes: float) -> str:
    """Bytes for people: ``3.1 GB``, ``5 GB``; under 1 GB in MB (``850 MB``), not ``0 GB``."""
    if n_bytes < GB:
        return f"{n_bytes / 10 ** 6:.0f} MB"
    return f"{n_bytes / GB:.1f}".removesuffix(".0") + " GB"


@dataclass(frozen=True)
class DiskReading:
    path: str
    free_bytes: int
    min_free_bytes: int
    # What this reading is held to: min_free_bytes, plus what a download stopped for a low disk
    # freed when it stopped (see actors/stages.py) so that it does not restart only to stop again.
    need_bytes: int = -1

    @property
    def needed(self) -> int:
        return self.min_free_bytes if self.need_bytes < 0 else self.need_bytes

    @property
    def low(self) -> bool:
        return self.free_bytes < self.needed

    @property
    def message(self) -> str:
        return f"disk has {gb(self.free_bytes)} free, needs {gb(self.needed)}"

    def data(self) -> dict[str, object]:
        """The ``disk_low`` / ``disk_ok`` event's data (``needed_bytes`` only when it is more
        than ``min_free_bytes``)."""
        out: dict[str, object] = {"free_bytes": self.free_bytes, "min_free_bytes": self.min_free_bytes,
                                  "path": self.path}
        if self.needed > self.min_free_bytes:
            out["needed_bytes"] = self.needed
        return out


class DiskSpace:
    """The free space under ``path``; low below ``min_free_bytes`` (0 never is)."""

    def __init__(self, path: str | Path, min_free_bytes: int):
        self.path = Path(path)
        self.min_free_bytes = int(min_free_bytes)

    @classmethod
    def from_gb(cls, path: str | Path, min_free_gb: float) -> "DiskSpace":
        return cls(path, int(min_free_gb * GB))

    def read(self, extra_bytes: int = 0) -> DiskReading:
        """One reading, held to ``min_free_bytes + extra_bytes`` (extra only when there is a
        threshold at all). The data dir may not exist yet: its nearest existing parent is on
        the same disk as far as anything here can tell."""
        p = self.path
        while not p.exists() and p != p.parent:
            p = p.parent
        need = self.min_free_bytes + (max(0, extra_bytes) if self.min_free_bytes > 0 else 0)
        return DiskReading(str(self.path), shutil.disk_usage(p).free, self.min_free_bytes, need)


class DiskAlarm:
    """Emits ``disk_low`` when a reading goes under the threshold and ``disk_ok`` when it comes
    back, once per change whichever worker saw it (an atomic swap of the state in Redis)."""

    def __init__(self, client: redis.Redis, events: Events, key: str = STATE_KEY):
        self.client, self.events, self.key = client, events, key

    def observe(self, reading: DiskReading, *, avid: str = "", job_id: str = "") -> str | None:
        """Record ``reading``; return the event type emitted, if the state changed."""
        state = "low" if reading.low else "ok"
        before = self.client.set(self.key, state, get=True)
        if before == state or (before is None and state == "ok"):
            return None
        kind = DISK_LOW if reading.low else DISK_OK
        self.events.emit(kind, avid=avid, job_id=job_id, stage="disk", data=reading.data())
        return kind
