"""Fetching bytes: one keep-alive curl session per worker thread, a stall watchdog, a shared
speed limit, the URL safety check on every hop, and retries with back-off.

A transfer that receives nothing for ``stall_timeout_s`` is cut by the workers' watchdog
(it shuts the connection's socket down, see :meth:`Transfer.abort_if_stalled`; the socket comes
from ``pipeline/hls/curl_socket.py``, the one door into curl_cffi's insides) and
retried; curl's low-speed check (1 byte/s over that window) is the backstop. There is no
total timeout, so a slow but moving transfer (a speed limit, a thin link) is never cut.
Setting the stop event aborts transfers at their next chunk.
"""

from __future__ import annotations

import math
import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import urljoin

from curl_cffi import CurlOpt
from curl_cffi import requests as cffi

from pipeline.config import HttpConfig
from pipeline.errors import Cancelled, UnresolvableHost, UnsafeURL
from pipeline.http import HttpClient, pin
from pipeline.urlcheck import UrlGuard
from pipeline.hls.buffers import SegmentBuffer
from pipeline.hls.curl_socket import track_socket
from pipeline.hls.payload import BadPayload
from pipeline.hls.playlist import ByteRange

CURL_WRITEFUNC_ERROR = 0xFFFFFFFF
_REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
RECV_BUFFER_BYTES = 256 * 1024


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass
class Transfer:
    """The transfer a worker is running, as other workers see it (to steal its second half).

    ``cut_at`` (bytes into this transfer) may be set from another thread: the transfer then
    keeps only the bytes before it and ends there.
    """

    received: int = 0
    cut_at: int | None = None
    sock_of: Callable[[], int] = lambda: -1  # the socket of the worker's connection, -1 unknown
    last_data: float = field(default_factory=time.monotonic)  # for the stall watchdog
    first_data: float | None = None  # when the body's first bytes came (for the transfer's rate)
    throttled: bool = False  # waiting in the speed limiter, not stalled
    stalled: bool = False  # the watchdog cut the connection

    def seconds_left(self, left: int, now: float, min_window_s: float) -> float | None:
        """How long ``left`` more bytes take at this transfer's rate so far; None while that
        rate is unknown (no body yet, or less than ``min_window_s`` of it)."""
        if self.first_data is None or self.received <= 0 or now - self.first_data < min_window_s:
            return None
        return left * (now - self.first_data) / self.received

    def abort_if_stalled(self, stall_timeout_s: float, now: float) -> bool:
        """Shut the connection down when no data came for ``stall_timeout_s`` (watchdog thread).

        curl's own low-speed check averages the speed over the last ~5 s, so a connection
        that stalls after a burst goes on for 6 s or more past the timeout; shutting the
        socket down makes the blocked transfer fail at once. (Without a known socket, curl's
        check stays the backstop.)
        """
        if self.stalled or self.throttled or now - self.last_data < stall_timeout_s:
            return False
        fd = self.sock_of()
        if fd < 0:
            return False
        self.stalled = True
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:  # closed meanwhile, or not a socket
            return False
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            s.close()
        return True


@dataclass(frozen=True)
class Piece:
    """Bytes ``start..`` of a segment body as one response gave them.

    ``total`` is the body's full size when the response said it. ``whole`` means the server
    ignored ``Range`` and ``data`` is the entire segment body.
    """

    start: int
    data: bytes | bytearray | memoryview  # a view into the worker's buffer until copied
    total: int | None
    whole: bool = False


def _content_range_total(value: str) -> int | None:
    m = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", value.strip())
    return int(m.group(1)) if m else None


class TransientError(Exception):
    """One attempt failed in a way a retry may fix; the message is the reason."""


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
                 limiter: RateLimiter, stop: threading.Event, stall_timeout_s: float,
                 buffer: SegmentBuffer | None = None):
        self.client = HttpClient(http, headers=headers)
        self.client.session.curl_options.update({
            CurlOpt.LOW_SPEED_LIMIT: 1,
            CurlOpt.LOW_SPEED_TIME: max(1, math.ceil(stall_timeout_s)),
            CurlOpt.CONNECTTIMEOUT_MS: int(min(http.timeout_s, stall_timeout_s) * 1000),
            # Bigger reads mean fewer Python callbacks per segment (curl's default is 16 KiB).
            CurlOpt.BUFFERSIZE: RECV_BUFFER_BYTES,
            CurlOpt.MAXCONNECTS: 1,  # one connection per worker, so its socket is known
        })
        self.sock_of = track_socket(self.client.session)
        self.guard = guard
        self.limiter = limiter
        self.stop = stop
        self.inflight_bytes = 0  # body bytes of the current attempt
        self.wire_bytes = 0  # every body byte received by this worker
        # Every body lands here; what get()/get_piece() return is a view of it, valid until
        # this fetcher's next request.
        self.buffer = buffer if buffer is not None else SegmentBuffer()

    def get(self, url: str, byterange: ByteRange | None = None) -> memoryview:
        """One attempt at the body of ``url`` (or its byte range): a view of :attr:`buffer`.

        Raises:
          TransientError: network error, stall, bad status, short body.
          UnsafeURL: the URL or a redirect target is forbidden.
          Cancelled: the stop event was set.
        """
        status, headers, buf, _cut = self._request(url, byterange.header if byterange else None)
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

    def get_piece(self, url: str, byterange: ByteRange | None, start: int, end: int | None,
                  transfer: Transfer) -> Piece:
        """One attempt at bytes ``start..end`` (exclusive; None = to the end) of a segment body.

        ``byterange`` places the body inside ``url`` (EXT-X-BYTERANGE). The transfer may be
        cut short by another worker through ``transfer.cut_at``.

        Raises: as :meth:`get`.
        """
        if byterange is not None:
            stop = byterange.length if end is None else min(end, byterange.length)
            header: str | None = f"bytes={byterange.offset + start}-{byterange.offset + stop - 1}"
        elif start == 0 and end is None:
            header = None
        else:
            header = f"bytes={start}-{'' if end is None else end - 1}"
        status, headers, buf, cut = self._request(url, header, transfer)
        if status == 200 and header is not None:  # Range ignored: the whole resource
            if cut:
                raise TransientError("server ignores Range")
            if byterange is not None:
                if len(buf) < byterange.offset + byterange.length:
                    raise TransientError(f"body of {len(buf)} bytes ends before range {byterange.header}")
                buf = buf[byterange.offset:byterange.offset + byterange.length]
            return Piece(0, buf, len(buf), whole=True)
        if status == 200:
            declared = headers.get("Content-Length", "")
            total = int(declared) if declared.isdigit() and not headers.get("Content-Encoding") else None
            return Piece(0, buf, len(buf) if total is None and not cut else total)
        if status == 416 and byterange is None:
            total = _content_range_total(headers.get("Content-Range", ""))
            if total is None or total > start:
                raise TransientError(f"HTTP 416 for {header}")
            return Piece(start, b"", total)
        if status != 206:
            raise TransientError(f"HTTP {status}")
        m = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
        first = byterange.offset + start if byterange else start
        if not m or int(m.group(1)) != first:
            raise TransientError(f"bad Content-Range {headers.get('Content-Range')!r} for {header}")
        if not cut and int(m.group(2)) - first + 1 != len(buf):
            raise TransientError(f"Content-Range {headers.get('Content-Range')!r} but {len(buf)} bytes")
        if byterange is not None:
            total: int | None = byterange.length
        else:
            total = int(m.group(3)) if m.group(3) != "*" else None
        return Piece(start, buf, total)

    def _request(self, url: str, range_header: str | None,
                 transfer: Transfer | None = None) -> tuple[int, Mapping[str, str], memoryview, bool]:
        """GET with manual redirects (each hop checked), the stop flag, the speed limit and cuts.

        Returns ``(status, headers, body, cut)``; ``body`` is a view of :attr:`buffer`; ``cut``
        means the body was deliberately ended at ``transfer.cut_at``.
        """
        buf = self.buffer
        buf.reset()
        t = transfer or Transfer()
        t.sock_of = self.sock_of
        t.last_data = time.monotonic()
        self.inflight_bytes = 0
        cut_hit = False

        def on_chunk(chunk: bytes) -> int:
            nonlocal cut_hit
            if self.stop.is_set():
                return CURL_WRITEFUNC_ERROR
            n = len(chunk)
            t.last_data = time.monotonic()
            if t.first_data is None:
                t.first_data = t.last_data
            cut_at = t.cut_at
            if cut_at is not None and buf.size + n >= cut_at:
                keep = max(0, cut_at - buf.size)
                buf.append(memoryview(chunk)[:keep])
                self.inflight_bytes += keep
                self.wire_bytes += n
                t.received = buf.size
                cut_hit = True
                return CURL_WRITEFUNC_ERROR  # ends the transfer: the rest is another worker's
            buf.append(chunk)
            self.inflight_bytes += n
            self.wire_bytes += n
            t.received = buf.size
            if self.limiter.rate > 0:
                t.throttled = True
                self.limiter.consume(n, self.stop)
                t.throttled = False
                t.last_data = time.monotonic()
            return n

        headers = {"Range": range_header} if range_header else {}
        for _hop in range(MAX_REDIRECTS + 1):
            try:  # every hop checked; curl connects to the addresses the guard checked
                pin(self.client.session, self.guard.target(url))
            except UnresolvableHost as e:  # nothing connected to; DNS may come back: retry
                raise TransientError(e.reason) from None
            try:
                r = self.client.session.request("GET", url, headers=headers, timeout=None,
                                                allow_redirects=False, content_callback=on_chunk)
            except cffi.RequestsError as e:
                if self.stop.is_set():
                    raise Cancelled("download stopped") from None
                if cut_hit and e.response is not None:
                    r = e.response
                    break
                if t.stalled:
                    raise TransientError("stalled: no data for the stall timeout, connection cut") from None
                raise TransientError(_short(str(e))) from None
            location = r.headers.get("Location")
            if r.status_code in _REDIRECTS and location:
                url = urljoin(url, location)
                buf.reset()
                self.inflight_bytes = 0
                t.received = 0
                t.first_data = None
                continue
            break
        else:
            raise TransientError(f"more than {MAX_REDIRECTS} redirects")
        cut_at = t.cut_at
        if cut_at is not None and buf.size > cut_at:  # cut requested after the last chunk came
            buf.truncate(cut_at)
            cut_hit = True
        if not cut_hit and r.status_code in (200, 206) and not r.headers.get("Content-Encoding"):
            declared = r.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) != buf.size:
                raise TransientError(f"short body: {buf.size} of {declared} bytes")
        return r.status_code, r.headers, buf.view(), cut_hit

    def close(self) -> None:
        self.client.close()


def with_retries(attempt: Callable[[], object], *, retries: int, stop: threading.Event,
                 on_retry: Callable[[int, str], None] | None = None,
                 base_delay_s: float = 0.5, max_delay_s: float = 8.0) -> tuple[object, str]:
    """Run ``attempt`` up to ``retries + 1`` times with exponential back-off and jitter.

    Returns ``(result, "")`` on success, ``(None, last_reason)`` when every attempt failed.
    ``TransientError`` and ``BadPayload`` are retried; anything else propagates.
    """
    reason = ""
    for n in range(retries + 1):
        if stop.is_set():
            raise Cancelled("download stopped")
        try:
            return attempt(), ""
        except (TransientError, BadPayload) as e:
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


__all__ = ["Fetcher", "Piece", "RateLimiter", "Transfer", "TransientError", "UnsafeURL", "UrlGuard", "with_retries"]
