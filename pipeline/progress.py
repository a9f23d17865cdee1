"""A download's progress as the events and the job record show it (speed and ETA as text)."""

from __future__ import annotations

from typing import Any

__all__ = ["progress_fields", "format_speed", "format_eta"]


def progress_fields(p: Any) -> dict[str, Any]:
    """The ``progress_update`` data of one :class:`pipeline.hls.Progress` snapshot."""
    return {"percent": round(p.percent, 1), "speed": format_speed(p.speed_bytes_per_s),
            "eta": format_eta(p.eta_s), "bytes_done": p.bytes_done,
            "segments_done": p.segments_done, "segments_total": p.segments_total,
            "speed_bytes_per_s": round(p.speed_bytes_per_s)}


def format_speed(bytes_per_s: float) -> str:
    """``1.5 MB/s``: binary units, one decimal."""
    for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
        if bytes_per_s < 1024 or unit == "GB/s":
            return f"{bytes_per_s:.1f} {unit}"
        bytes_per_s /= 1024
    return ""


def format_eta(eta_s: float | None) -> str:
    """``H:MM:SS``, or empty when unknown."""
    if eta_s is None:
        return ""
    s = int(eta_s)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
