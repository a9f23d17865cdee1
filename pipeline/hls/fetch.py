"""Fetching bytes: one keep-alive curl session per worker thread, a stall watchdog, a shared
speed limit, the URL safety check on every hop, and retries with back-off.

A transfer that receives nothing for ``stall_timeout_s`` is aborted by curl's low-speed
check (1 byte/s over that window) and retried; there is no total timeout, so a slow but
moving transfer (a speed limit, a thin link) is never cut. Setting the stop event aborts
transfers at their next chunk.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

from curl_cffi import CurlOpt
from curl_cffi import requests as cffi

from pipeline.config import HttpConfig
from pipeline.errors import Cancelled, UnsafeURL
from pipeline.http import HttpClient, check_url
from pipeline.hls.playlist import ByteRange

CURL_WRITEFUNC_ERROR = 0xFFFFFFFF
_REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
RECV_BUFFER_BYTES = 256 * 1024


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class Span:
    """Part of a body: ``data`` starts at byte ``first``; ``total`` is the full size when known."""

    first: int
    data: bytes | bytearray
    total: int | None
    whole: bool = False  # the server ignored Range and sent the whole body


def _content_range_total(value: str) -> int | None:
    m = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", value.strip())
    return int(m.group(1)) if m else None


class TransientError(Exception):
    """One attempt failed in a way a retry may fix; the message is the reason."""


class UrlGuard:
    """``check_url`` with a per-host cache (the check depends on scheme and host only)."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private
        self._ok: set[tuple[str, str]] = set()

    def check(self, url: str) -> str:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._ok:
            check_url(url, allow_private=self.allow_private)
            self._ok.add(key)
        return url


class RateLimiter:
    """A global byte budget shared by all workers (0 = unlimited)."""

    def __init__(self, bytes_per_s: int):
        self.rate = float(bytes_per_s)
        self._lock = threading.Lock()
        self._next = 0.0

    def consume(self, n: int, stop: threading.Event) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self.rate
        if start > now:
            stop.wait(start - now)


class Fetcher:
    """The fetch side of one worker thread. Not thread-safe: one per thread."""

    def __init__(self, http: HttpConfig, headers: Mapping[str, str], *, guard: UrlGuard,
                 limiter: RateLimiter, stop: threading.Event, stall_timeout_s: float):
        self.client = HttpClient(http, headers=headers)
        self.client.session.curl_options.update({
            CurlOpt.LOW_SPEED_LIMIT: 1,
            CurlOpt.LOW_SPEED_TIME: max(1, math.ceil(stall_timeout_s)),
            CurlOpt.CONNECTTIMEOUT_MS: int(min(http.timeout_s, stall_timeout_s) * 1000),
            # Bigger reads mean fewer Python callbacks per segment (curl's default is 16 KiB).
            CurlOpt.BUFFERSIZE: RECV_BUFFER_BYTES,
        })
        self.guard = guard
        self.limiter = limiter
        self.stop = stop
        self.inflight_bytes = 0  # body bytes of the current attempt
        self.wire_bytes = 0  # every body byte received by this worker

    def get(self, url: str, byterange: ByteRange | None = None) -> bytes | bytearray:
        """One attempt at the body of ``url`` (or its byte range).

        Raises:
          TransientError: network error, stall, bad status, short body.
          UnsafeURL: the URL or a redirect target is forbidden.
          Cancelled: the stop event was set.
        """
        status, headers, buf = self._request(url, byterange.header if byterange else None)
        if status not in (200, 206):
            raise TransientError(f"HTTP {status}")
        if byterange is not None:
            if status == 200:  # the server ignored Range: cut the range out of the whole body
                if len(buf) < byterange.offset + byterange.length:
                    raise TransientError(f"body of {len(buf)} bytes ends before range {byterange.header}")
                return buf[byterange.offset:byterange.offset + byterange.length]
            if len(buf) != byterange.length:
                raise TransientError(f"range {byterange.header} returned {len(buf)} bytes")
        return buf

    def get_span(self, url: str, first: int, last: int | None) -> Span:
        """One attempt at bytes ``first..last`` (inclusive; ``last`` None = to the end) of ``url``.

        A server that ignores ``Range`` answers 200: the span then holds the whole body and
        says so. A start past the end (416) gives an empty span with the total size.
        """
        header = f"bytes={first}-{'' if last is None else last}"
        status, headers, buf = self._request(url, header)
        if status == 200:
            return Span(first, buf, len(buf), whole=True)
        if status == 416:
            total = _content_range_total(headers.get("Content-Range", ""))
            if total is None or total > first:
                raise TransientError(f"HTTP 416 for {header}")
            return Span(first, b"", total)
        if status != 206:
            raise TransientError(f"HTTP {status}")
        m = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
        if not m or int(m.group(1)) != first or int(m.group(2)) - first + 1 != len(buf):
            raise TransientError(f"bad Content-Range {headers.get('Content-Range')!r} for {header}")
        if last is not None and int(m.group(2)) > last:
            raise TransientError(f"Content-Range {headers.get('Content-Range')!r} exceeds {header}")
        total = int(m.group(3)) if m.group(3) != "*" else None
        return Span(first, buf, total)

    def _request(self, url: str, range_header: str | None) -> tuple[int, Mapping[str, str], bytearray]:
        """GET with manual redirects (each hop checked), the stop flag and the speed limit."""
        buf = bytearray()
        self.inflight_bytes = 0

        def on_chunk(chunk: bytes) -> int:
            if self.stop.is_set():
                return CURL_WRITEFUNC_ERROR
            buf.extend(chunk)
            n = len(chunk)
            self.inflight_bytes += n
            self.wire_bytes += n
            self.limiter.consume(n, self.stop)
            return n

        headers = {"Range": range_header} if range_header else {}
        for _hop in range(MAX_REDIRECTS + 1):
            self.guard.check(url)
            try:
                r = self.client.session.request("GET", url, headers=headers, timeout=None,
                                                allow_redirects=False, content_callback=on_chunk)
            except cffi.RequestsError as e:
                if self.stop.is_set():
                    raise Cancelled("download stopped") from None
                raise TransientError(_short(str(e))) from None
            location = r.headers.get("Location")
            if r.status_code in _REDIRECTS and location:
                url = urljoin(url, location)
                buf.clear()
                self.inflight_bytes = 0
                continue
            break
        else:
            raise TransientError(f"more than {MAX_REDIRECTS} redirects")
        if r.status_code in (200, 206) and not r.headers.get("Content-Encoding"):
            declared = r.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) != len(buf):
                raise TransientError(f"short body: {len(buf)} of {declared} bytes")
        return r.status_code, r.headers, buf

    def close(self) -> None:
        self.client.close()


def with_retries(attempt: Callable[[], object], *, retries: int, stop: threading.Event,
                 on_retry: Callable[[int, str], None] | None = None,
                 base_delay_s: float = 0.5, max_delay_s: float = 8.0) -> tuple[object, str]:
    """Run ``attempt`` up to ``retries + 1`` times with exponential back-off and jitter.

    Returns ``(result, "")`` on success, ``(None, last_reason)`` when every attempt failed.
    ``TransientError`` and ``ValueError`` (a bad payload) are retried; anything else propagates.
    """
    reason = ""
    for n in range(retries + 1):
        if stop.is_set():
            raise Cancelled("download stopped")
        try:
            return attempt(), ""
        except (TransientError, ValueError) as e:
            reason = str(e) or type(e).__name__
        if n < retries:
            if on_retry:
                on_retry(n + 1, reason)
            delay = min(max_delay_s, base_delay_s * 2 ** n) * (0.5 + random.random() / 2)
            if stop.wait(delay):
                raise Cancelled("download stopped")
    return None, reason


def _short(text: str) -> str:
    return text if len(text) < 200 else text[:197] + "..."


__all__ = ["Fetcher", "RateLimiter", "Span", "TransientError", "UnsafeURL", "UrlGuard", "with_retries"]
