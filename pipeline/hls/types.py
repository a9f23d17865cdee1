"""The HLS engine's value types: how to download (:class:`HlsOptions`), a running download's
:class:`Progress`, and what it produced (:class:`DownloadResult`).

Their own module so that the engine and its segment workers both use them without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pipeline.config import DownloadConfig, HttpConfig

__all__ = ["DownloadResult", "HlsOptions", "Progress"]


@dataclass(frozen=True)
class HlsOptions:
    """How to download. Every field has a working default.

    Parameters:
      http: impersonation profile (and its User-Agent), proxy, timeouts, private-URL policy.
      headers: extra request headers for every request, e.g. ``{"Referer": page_url}``.
      concurrency: segments fetched at once (one connection each).
      segment_retries: retries per segment after the first attempt (back-off 0.5 s doubling, ≤ 8 s).
      stall_timeout_s: a transfer receiving nothing for this long is aborted and retried.
      speed_limit_bytes_per_s: total download rate cap; 0 is unlimited.
      ad_segment_regex: segments whose URL matches are left out (and out of the expected duration).
      variant: ``highest``, ``lowest`` or a max height such as ``720``.
      ffmpeg: the ffmpeg binary; None uses the one imageio-ffmpeg ships.
      keep_parts: keep the part directory after success.
      file_mode: the MP4's exact mode (``library.file_mode``); None leaves ``0666 & ~umask``.
    """

    http: HttpConfig = field(default_factory=HttpConfig)
    headers: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 16
    segment_retries: int = 5
    stall_timeout_s: float = 30.0
    speed_limit_bytes_per_s: int = 0
    ad_segment_regex: str | None = None
    variant: str = "highest"
    ffmpeg: str | None = None
    keep_parts: bool = False
    file_mode: int | None = None

    @classmethod
    def from_config(cls, download: DownloadConfig, http: HttpConfig,
                    headers: Mapping[str, str] | None = None, *,
                    file_mode: int | None = None) -> "HlsOptions":
        return cls(http=http, headers=dict(headers or {}), concurrency=download.concurrency,
                   segment_retries=download.segment_retries, stall_timeout_s=download.stall_timeout_s,
                   speed_limit_bytes_per_s=download.speed_limit_bytes_per_s,
                   ad_segment_regex=download.ad_segment_regex, variant=download.variant,
                   ffmpeg=download.ffmpeg, keep_parts=download.keep_parts, file_mode=file_mode)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running download. ``bytes_done`` counts segments kept from an earlier run."""

    bytes_done: int
    segments_done: int
    segments_total: int
    speed_bytes_per_s: float
    eta_s: float | None
    percent: float  # 0..100; 100 only once the MP4 is in place


@dataclass(frozen=True)
class DownloadResult:
    """What ``download()`` produced. ``bytes`` is the size of the MP4 file."""

    path: Path
    duration_s: float
    expected_duration_s: float
    segments: int
    bytes: int
    segments_fetched: int  # fetched in this run; fewer than ``segments`` after a resume
    buffers: int = 0  # segment receive buffers this run allocated: at most ``concurrency``
    buffer_bytes: int = 0  # their total size: what the bodies held in memory, whatever the stream's length
