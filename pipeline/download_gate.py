"""Whether a download may run now, and at what rate: the free-space guard and the schedule.

:class:`DownloadGate` joins a :class:`~pipeline.diskspace.DiskSpace` and a
:class:`~pipeline.schedule.Schedule` with a clock (``now``, injected: the worker passes the
wall clock, tests pass their own). The download stage asks it before taking a slot and
every second while downloading; the gateway's ``/health`` asks it why downloads are paused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from pipeline.config import DownloadConfig
from pipeline.diskspace import DiskReading, DiskSpace
from pipeline.schedule import Schedule, format_rate

__all__ = ["DownloadGate", "Pause", "Paused"]

DISK, HOURS = "disk", "hours"


@dataclass(frozen=True)
class Pause:
    """Why downloads wait: ``kind`` is ``hours`` or ``disk``; ``message`` is for people."""

    kind: str
    message: str
    until: str = ""  # HH:MM the window opens (hours only), on the clock of ``timezone``
    disk: DiskReading | None = None
    timezone: str = ""  # the zone ``until`` is in (hours only): download.timezone or the server's

    def data(self) -> dict[str, object]:
        out: dict[str, object] = {"reason": self.kind, "message": self.message}
        if self.until:
            out["until"] = self.until
            out["timezone"] = self.timezone
        if self.disk is not None:
            out.update(self.disk.data())
        return out


class Paused(Exception):
    """A download waited as long as one message may (``DownloadConfig.pause_resend_s``) and is
    sent again to its queue: not a failure, no retry is used."""

    def __init__(self, pause: Pause):
        super().__init__(f"waiting: {pause.message}")
        self.pause = pause


class DownloadGate:
    """The free-space guard and the schedule, read against ``now()``."""

    def __init__(self, disk: DiskSpace, schedule: Schedule, *, now: Callable[[], datetime] = datetime.now,
                 poll_s: float = 1.0):
        self.disk, self.schedule, self.now, self.poll_s = disk, schedule, now, poll_s

    @classmethod
    def from_config(cls, download: DownloadConfig, data_path, *,
                    now: Callable[[], datetime] = datetime.now) -> "DownloadGate":
        return cls(DiskSpace.from_gb(data_path, download.min_free_gb),
                   Schedule.parse(download.hours, [(b.hours, b.limit) for b in download.bandwidth],
                                  download.timezone), now=now)

    def pauses(self, reading: DiskReading | None = None) -> list[Pause]:
        """Every reason downloads wait now (empty: they may run). Hours come first: a disk
        reading matters only once the window is open."""
        now = self.now()
        out = []
        opens = self.schedule.opens_at(now)
        if opens is not None:
            until, zone = opens.strftime("%H:%M"), self.schedule.zone_name(now)
            out.append(Pause(HOURS, f"quiet hours until {until} ({zone})", until=until, timezone=zone))
        reading = reading or self.disk.read()
        if reading.low:
            out.append(Pause(DISK, reading.message, disk=reading))
        return out

    def check(self, reading: DiskReading | None = None) -> Pause | None:
        """The first reason downloads wait now, or None."""
        found = self.pauses(reading)
        return found[0] if found else None

    def speed_limit(self, base: int = 0) -> int:
        """The rate cap for a download in force now (bytes/s, 0 = unlimited)."""
        return self.schedule.speed_limit(self.now(), base)

    def state(self, base: int = 0) -> dict[str, object]:
        """What ``/health`` shows: paused or not, every reason, the rate cap in force now, and
        the zone the download windows are read in."""
        found = self.pauses()
        return {"paused": bool(found), "message": "; ".join(p.message for p in found),
                "reasons": [p.data() for p in found], "speed_limit_bytes_per_s": self.speed_limit(base),
                "timezone": self.schedule.zone_name(self.now())}

    def describe_limit(self, base: int = 0) -> str:
        limit = self.speed_limit(base)
        return format_rate(limit) if limit else "unlimited"
