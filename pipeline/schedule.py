"""When downloads may run, and how fast: daily windows read from the config.

``download.hours: "01:00-07:00"`` is the window in which downloads run (empty = always);
``download.bandwidth: [{hours: "08:00-23:00", limit: "2MiB/s"}]`` caps each download's rate in
given windows. Times are read on the clock of ``download.timezone`` (an IANA name such as
``Asia/Shanghai``; empty = the server's local wall clock); a window may cross midnight
(``"22:00-06:00"``). Every function takes the time as a parameter, so callers (and tests)
decide what "now" is: an aware instant is turned into the zone's wall clock, a naive one is
taken as the server's local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WINDOW_FORM", "RATE_FORM", "TIMEZONE_FORM", "Window", "Schedule", "parse_window", "parse_rate",
           "parse_zone", "format_rate"]

WINDOW_FORM = 'a daily window "HH:MM-HH:MM" such as "01:00-07:00" (it may cross midnight, "22:00-06:00")'
TIMEZONE_FORM = ('empty (the server\'s local time) or an IANA time zone name such as "Asia/Shanghai", '
                 '"Europe/Berlin" or "UTC"')
RATE_FORM = 'a rate such as "2MiB/s", "500KiB/s" or "1048576" (bytes per second; K, M, G are 1024-based)'

_TIME = r"([01]?\d|2[0-4]):([0-5]\d)"
_WINDOW = re.compile(rf"\s*{_TIME}\s*-\s*{_TIME}\s*")
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*(?:/\s*s)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
DAY_MIN = 24 * 60


@dataclass(frozen=True)
class Window:
    """A daily window ``[start, end)`` in minutes after midnight; ``end < start`` crosses midnight."""

    start: int
    end: int

    def contains(self, now: datetime) -> bool:
        m = now.hour * 60 + now.minute
        if self.start < self.end:
            return self.start <= m < self.end
        return m >= self.start or m < self.end

    def next_start(self, now: datetime) -> datetime:
        """The next time the window opens, at or after ``now`` (to the minute)."""
        at = now.replace(hour=self.start // 60, minute=self.start % 60, second=0, microsecond=0)
        return at if at >= now else at + timedelta(days=1)

    def next_end(self, now: datetime) -> datetime:
        """The next time the window closes after ``now``."""
        end = self.end % DAY_MIN
        at = now.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_window(text: str) -> Window:
    """``"01:00-07:00"`` → :class:`Window`; ValueError saying what is wrong otherwise
    (callers name :data:`WINDOW_FORM`)."""
    m = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if start > DAY_MIN or end > DAY_MIN or start == DAY_MIN:
        raise ValueError(f"{text!r}: times run from 00:00 to 24:00 (24:00 only as an end)")
    if start == end % DAY_MIN and not (start == 0 and end == DAY_MIN):
        raise ValueError(f"{text!r} is empty: start and end must differ (00:00-24:00 is all day)")
    return Window(start, end)


def parse_rate(text: str | int) -> int:
    """``"2MiB/s"`` → 2097152 bytes per second; ValueError otherwise (callers name :data:`RATE_FORM`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _RATE.fullmatch(text) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"{text!r} is not a rate")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"{text!r} is under 1 byte per second")
    return value


def parse_zone(name: str) -> tzinfo | None:
    """``"Asia/Shanghai"`` → its zone; ``""`` → None (the server's local time); ValueError
    otherwise (callers name :data:`TIMEZONE_FORM`). The zone data comes from the system or,
    on a slim machine without /usr/share/zoneinfo, from the ``tzdata`` package."""
    if not isinstance(name, str):
        raise ValueError(f"{name!r} is not a time zone name")
    if not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a path-like key such as "../x"
        raise ValueError(f"{name!r} is not a known time zone") from None


def format_rate(bytes_per_s: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if bytes_per_s >= size:
            return f"{bytes_per_s / size:g}{unit}/s"
    return f"{bytes_per_s}B/s"


@dataclass(frozen=True)
class Schedule:
    """The download window (None = always), the bandwidth caps by window, and the zone whose
    clock both are read on (None = the server's local time)."""

    hours: Window | None = None
    caps: tuple[tuple[Window, int], ...] = ()
    zone: tzinfo | None = None

    @classmethod
    def parse(cls, hours: str, bandwidth: Iterable[tuple[str, str | int]] = (), timezone: str = "") -> "Schedule":
        return cls(parse_window(hours) if (hours or "").strip() else None,
                   tuple((parse_window(h), parse_rate(limit)) for h, limit in bandwidth), parse_zone(timezone))

    def local(self, now: datetime) -> datetime:
        """``now`` on the zone's wall clock (unchanged without a zone: the server's local time)."""
        return now.astimezone(self.zone) if self.zone is not None else now

    def zone_name(self, now: datetime) -> str:
        """The zone the windows are read in, for people: its IANA name, or the server's own
        abbreviation (``UTC``, ``CST``…) when none is configured."""
        if self.zone is not None:
            return str(self.zone)
        return now.astimezone().tzname() or "local time"

    def may_download(self, now: datetime) -> bool:
        return self.hours is None or self.hours.contains(self.local(now))

    def opens_at(self, now: datetime) -> datetime | None:
        """When downloads may next run, on the zone's clock (None: they may now)."""
        return None if self.may_download(now) else self.hours.next_start(self.local(now))  # type: ignore[union-attr]

    def speed_limit(self, now: datetime, base: int = 0) -> int:
        """The rate cap in force at ``now``: the lowest of ``base`` and every cap whose window
        holds ``now``; 0 = unlimited."""
        now = self.local(now)
        limits = [c for w, c in self.caps if w.contains(now)] + ([base] if base > 0 else [])
        return min(limits) if limits else 0
