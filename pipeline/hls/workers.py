"""The fetching half of a download: worker threads, one keep-alive connection each.

Work is queued in playlist order, one piece per segment. A worker that finds the queue
empty does not go idle while others still transfer: it **steals** the second half of the
largest running transfer — it asks for that byte range, and the running transfer ends
where the stolen half begins (``Transfer.cut_at``). A download so never ends on a few
slow connections while the others wait. A steal costs a request, so only a transfer that,
at its own rate so far, has at least ``STEAL_MIN_SECONDS_LEFT`` to go is split: on a fast
link (loopback, a LAN) a clean run makes exactly one request per segment. The worker
storing a segment's last piece joins the pieces, decrypts and verifies the body, and writes
it to the part directory; a body whose pieces do not add up is fetched again in one piece.

Memory stays bounded by the concurrency, whatever the stream's length: each worker
receives into its own reusable buffer (:mod:`pipeline.hls.buffers`, at most ``concurrency``
of them), decrypts the segment there in place and writes it out before fetching the next;
only the pieces of a split segment are copied out, and live until it is joined.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.errors import Cancelled, PlaylistError, SegmentFailed, VerifyFailed
from pipeline.hls.buffers import BufferPool
from pipeline.hls.fetch import Fetcher, Piece, RateLimiter, Transfer, UrlGuard, with_retries
from pipeline.hls.parts import PartDir
from pipeline.hls.payload import BadPayload, clean_init, clean_segment
from pipeline.hls.playlist import InitSection, Segment
from pipeline.hls.types import HlsOptions, Progress

PROGRESS_INTERVAL_S = 0.2
SPEED_WINDOW_S = 0.5
SPEED_SMOOTHING = 0.3  # weight of the newest sample in the moving average
MIN_STEAL_BYTES = 128 * 1024  # each half of a stolen transfer is at least this big
# A steal is one more request; it must save real time. At 2 MB/s a 1 MB segment has at most
# 0.5 s to go, so the tail of a throttled download is still split; on loopback never.
STEAL_MIN_SECONDS_LEFT = 0.2
RATE_WINDOW_S = 0.05  # a transfer's rate is judged after this much of its body
IDLE_POLL_S = 0.05
# The remuxer (ffmpeg) is the critical path when the link is fast: whatever it has not muxed
# when the last segment lands is left to do after it. On a busy CPU the fetch threads run at
# this lower priority, so ffmpeg gets the CPU it needs and keeps up with the download; on an
# idle one (a slow link) it changes nothing.
WORKER_NICE = 5


def yield_cpu(nice: int) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux: each thread has its own nice
    value; elsewhere, or when refused, nothing changes)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        pass


class _Failed(Exception):
    """A segment (or a piece of it) failed every retry."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Work:
    """Bytes ``start..end`` of one segment's body (``end`` None = to the end), to fetch."""

    seg: Segment
    start: int = 0
    end: int | None = None
    result: Piece | None = None


@dataclass(eq=False)
class _Segment:
    """The pieces of one segment; complete when none is outstanding."""

    seg: Segment
    works: list[_Work] = field(default_factory=list)
    outstanding: int = 0


def assemble(seg: Segment, works: list[_Work]) -> bytes | bytearray | None:
    """Join the pieces of a segment body; None when they do not add up to one whole body."""
    pieces = [w.result for w in works if w.result is not None]
    if len(pieces) != len(works):
        return None
    for p in pieces:
        if p.whole:
            return p.data
    if len(works) == 1 and works[0].start == 0 and works[0].end is None:
        return pieces[0].data  # one plain response, length already checked against Content-Length
    totals = {p.total for p in pieces if p.total is not None}
    if len(totals) != 1:
        return None
    total = totals.pop()
    ordered = sorted(zip(works, pieces), key=lambda wp: wp[0].start)
    if ordered[0][0].start != 0:
        return None
    for n, (w, p) in enumerate(ordered):
        end = ordered[n + 1][0].start if n + 1 < len(ordered) else total
        if len(p.data) != max(0, min(end, total) - w.start):
            return None
    body = b"".join(p.data for _, p in ordered)
    return body if len(body) == total else None


class Workers:
    """Fetches a stream's segments into a part directory; reports progress from the calling thread."""

    def __init__(self, options: HlsOptions, guard: UrlGuard, parts: PartDir, keys: dict[str, bytes],
                 fmp4: bool, cancel: threading.Event, progress: Callable[[Progress], None] | None):
        self.options, self.guard, self.parts, self.keys = options, guard, parts, keys
        self.fmp4, self.cancel, self.progress = fmp4, cancel, progress
        self.on_segment: Callable[[Path], None] | None = None  # called (from a worker) per stored segment
        self.stop = threading.Event()
        self.limiter = RateLimiter(options.speed_limit_bytes_per_s)
        self.buffers = BufferPool(options.concurrency)  # one per fetcher alive at once
        self.fetchers: list[Fetcher] = []
        self.total = 0
        self.done = 0
        self.done_bytes = 0  # bytes of complete segments (kept ones count their size on disk)
        self.partial_bytes = 0  # bytes of finished pieces of segments not yet complete
        self.known_sizes: list[int] = []
        self.speed = 0.0
        self.steals = 0
        self.stalls = 0
        self._lock = threading.Lock()  # guards the fields below and every _Work/_Segment
        self._todo: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._running: dict[int, tuple[_Work, Transfer]] = {}
        self._segments: dict[int, _Segment] = {}
        self._outstanding = 0  # pieces queued or being fetched
        self._ranges_ignored = False
        self._speed_mark: tuple[float, int] | None = None
        self._last_emit = 0.0
        self._shown = (0, 0.0)  # bytes and percent last reported

    def _new_fetcher(self) -> Fetcher:
        o = self.options
        f = Fetcher(o.http, o.headers, guard=self.guard, limiter=self.limiter, stop=self.stop,
                    stall_timeout_s=o.stall_timeout_s, buffer=self.buffers.take())
        self.fetchers.append(f)
        return f

    def _close_fetcher(self, f: Fetcher) -> None:
        f.close()
        self.buffers.give(f.buffer)

    # -- the initialisation sections (fMP4), fetched first -----------------------------

    def fetch_inits(self, inits: tuple[InitSection, ...]) -> dict[InitSection, Path]:
        out: dict[InitSection, Path] = {}
        if not inits:
            return out
        fetcher = self._new_fetcher()
        try:
            for n, init in enumerate(inits):
                path = self.parts.init_path(n)
                out[init] = path
                if self.parts.complete_size(path, fmp4=True):
                    continue
                key = self.keys[init.key.uri] if init.key else None
                iv = init.key.iv if init.key else None
                if key is not None and iv is None:
                    raise PlaylistError(f"encrypted EXT-X-MAP {init.url} without an IV")

                def attempt(init: InitSection = init, key: bytes | None = key, iv: bytes | None = iv) -> bytes:
                    return clean_init(fetcher.get(init.url, init.byterange), key=key, iv=iv)

                data, reason = with_retries(attempt, retries=self.options.segment_retries, stop=self.cancel)
                if data is None:
                    raise SegmentFailed(-1, init.url, f"initialisation section: {reason}")
                PartDir.write_atomic(path, data)  # type: ignore[arg-type]
        finally:
            self._close_fetcher(fetcher)
            self.fetchers.remove(fetcher)
        return out

    # -- the segments ---------------------------------------------------------------------

    def run(self, segments: list[Segment]) -> int:
        """Fetch every segment not already complete in the part directory; returns how many were fetched.

        Raises:
          SegmentFailed: a segment failed every retry. Cancelled: ``cancel`` was set.
          UnsafeURL, OSError: from a worker, as they happened.
        """
        self.total = len(segments)
        pending: list[Segment] = []
        for s in segments:
            size = self.parts.complete_size(self.parts.segment_path(s.index, self.fmp4), self.fmp4)
            if size:
                self.done += 1
                self.done_bytes += size
                self.known_sizes.append(size)
            else:
                pending.append(s)
        if not pending:
            return 0
        for s in pending:
            work = _Work(s)
            self._segments[s.index] = _Segment(s, [work], 1)
            self._todo.put(work)
        self._outstanding = len(pending)
        results: queue.SimpleQueue[tuple[str, Segment | None, object]] = queue.SimpleQueue()
        workers = [threading.Thread(target=self._worker, args=(results,), daemon=True, name=f"hls-worker-{n}")
                   for n in range(min(self.options.concurrency, len(pending)))]
        watchdog = threading.Thread(target=self._watchdog, daemon=True, name="hls-watchdog")
        fetched = 0
        try:
            watchdog.start()
            for w in workers:
                w.start()
            while fetched < len(pending):
                if self.cancel.is_set():
                    raise Cancelled("download cancelled")
                try:
                    kind, seg, value = results.get(timeout=PROGRESS_INTERVAL_S)
                except queue.Empty:
                    if not any(w.is_alive() for w in workers):
                        raise VerifyFailed("every download worker stopped before the segments were done") from None
                    self._emit()
                    continue
                if kind == "done":
                    fetched += 1
                    self.done += 1
                    self.done_bytes += int(value)  # type: ignore[call-overload]
                elif kind == "failed" and seg is not None:
                    raise SegmentFailed(seg.index, seg.url, str(value))
                else:
                    raise value  # type: ignore[misc]
                self._emit()
        finally:
            self.stop.set()
            deadline = time.monotonic() + 2.0
            for w in workers:
                if w.ident is not None:
                    w.join(timeout=max(0.0, deadline - time.monotonic()))
        self._emit(force=True)
        return fetched

    def _watchdog(self) -> None:
        """Cut connections that received nothing for ``stall_timeout_s``; the piece is then retried."""
        period = min(1.0, max(0.05, self.options.stall_timeout_s / 4))
        while not self.stop.wait(period):
            now = time.monotonic()
            with self._lock:
                for _work, transfer in self._running.values():
                    if transfer.abort_if_stalled(self.options.stall_timeout_s, now):
                        self.stalls += 1

    def _worker(self, results: "queue.SimpleQueue[tuple[str, Segment | None, object]]") -> None:
        yield_cpu(WORKER_NICE)
        fetcher = self._new_fetcher()
        wid = threading.get_ident()
        work: _Work | None = None
        try:
            while not self.stop.is_set():
                work = self._next_work()
                if work is None:
                    return
                try:
                    complete = self._fetch_work(fetcher, wid, work)
                    if complete is None:
                        continue  # another worker still fetches a piece of this segment
                    raw_len, data = self._finish_segment(fetcher, complete)
                except _Failed as e:
                    results.put(("failed", work.seg, e.reason))
                    return
                if self.stop.is_set():
                    return
                path = self.parts.segment_path(work.seg.index, self.fmp4)
                PartDir.write_atomic(path, data)
                fetcher.inflight_bytes = 0
                with self._lock:
                    self.known_sizes.append(raw_len)
                if self.on_segment:
                    self.on_segment(path)
                results.put(("done", work.seg, raw_len))
        except Cancelled:
            return
        except BaseException as e:  # UnsafeURL, OSError (disk full), anything unexpected
            if not self.stop.is_set():
                results.put(("error", work.seg if work else None, e))
        finally:
            with self._lock:
                self._running.pop(wid, None)
            self._close_fetcher(fetcher)

    def _next_work(self) -> _Work | None:
        """The next queued piece, else half of the largest running transfer, else None when all is done."""
        while not self.stop.is_set():
            try:
                return self._todo.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                stolen = self._steal()
                if stolen is not None:
                    return stolen
                if self._outstanding == 0:
                    return None
            self.stop.wait(IDLE_POLL_S)
        return None

    def _steal(self) -> _Work | None:
        """Split the running transfer with the most bytes left; caller holds the lock."""
        if self._ranges_ignored:
            return None
        best: tuple[int, _Work, Transfer, int] | None = None
        now = time.monotonic()
        for work, transfer in self._running.values():
            end = work.end
            if end is None:
                if work.seg.byterange:
                    end = work.seg.byterange.length
                elif self.known_sizes:
                    end = sum(self.known_sizes) // len(self.known_sizes)
                else:
                    continue
            pos = work.start + transfer.received
            left = end - pos
            if left < 2 * MIN_STEAL_BYTES:
                continue
            seconds_left = transfer.seconds_left(left, now, RATE_WINDOW_S)
            if seconds_left is None or seconds_left < STEAL_MIN_SECONDS_LEFT:
                continue  # not worth a request (or its rate not known yet: look again soon)
            if best is None or left > best[0]:
                best = (left, work, transfer, pos)
        if best is None:
            return None
        left, victim, transfer, pos = best
        mid = pos + left // 2
        thief = _Work(victim.seg, mid, victim.end)
        victim.end = mid
        transfer.cut_at = mid - victim.start
        entry = self._segments[victim.seg.index]
        entry.works.append(thief)
        entry.outstanding += 1
        self._outstanding += 1
        self.steals += 1
        return thief

    def _fetch_work(self, fetcher: Fetcher, wid: int, work: _Work) -> _Segment | None:
        """Fetch one piece (with retries); returns the segment when this was its last piece."""

        def attempt() -> Piece:
            transfer = Transfer()
            with self._lock:
                start, end = work.start, work.end
                self._running[wid] = (work, transfer)
            try:
                return fetcher.get_piece(work.seg.url, work.seg.byterange, start, end, transfer)
            finally:
                with self._lock:
                    self._running.pop(wid, None)

        piece, reason = with_retries(attempt, retries=self.options.segment_retries, stop=self.stop)
        if piece is None:
            raise _Failed(reason if work.start == 0 else f"bytes {work.start}-: {reason}")
        fetcher.inflight_bytes = 0
        with self._lock:
            got: Piece = piece  # type: ignore[assignment]
            if got.whole:
                self._ranges_ignored = True
            elif work.end is not None and len(got.data) > work.end - work.start:
                # stolen from after this transfer's last chunk arrived: keep only our part
                got = Piece(got.start, got.data[:work.end - work.start], got.total)
            entry = self._segments[work.seg.index]
            entry.outstanding -= 1
            self._outstanding -= 1
            if entry.outstanding:
                # the worker's buffer takes its next body: keep this piece's bytes apart
                work.result = Piece(got.start, bytes(got.data), got.total, got.whole)
                self.partial_bytes += len(got.data)
                return None
            work.result = got
            self.partial_bytes -= sum(len(w.result.data) for w in entry.works if w.result and w is not work)
            del self._segments[work.seg.index]
            return entry

    def _finish_segment(self, fetcher: Fetcher, entry: _Segment) -> tuple[int, memoryview]:
        """Join, decrypt and verify a segment; fetch it again in one piece when that fails."""
        seg = entry.seg
        key, iv = self._key_iv(seg)
        raw = assemble(seg, entry.works)
        if raw is not None:
            try:
                return len(raw), clean_segment(raw, key=key, iv=iv, fmp4=self.fmp4,
                                               scratch=self._scratch(fetcher, raw))
            except BadPayload:
                pass
        # pieces that do not add up, or not media (an error page, a truncated or garbled
        # body): fetch the segment again in one piece, with the usual retries

        def attempt() -> tuple[int, memoryview]:
            body = fetcher.get(seg.url, seg.byterange)
            return len(body), clean_segment(body, key=key, iv=iv, fmp4=self.fmp4,
                                            scratch=self._scratch(fetcher, body))

        got, reason = with_retries(attempt, retries=self.options.segment_retries, stop=self.stop)
        if got is None:
            raise _Failed(reason)
        return got  # type: ignore[return-value]

    @staticmethod
    def _scratch(fetcher: Fetcher, raw: object) -> memoryview | None:
        """The fetcher's buffer when ``raw`` is exactly its body (decrypt in place), else None."""
        buf = fetcher.buffer
        if isinstance(raw, memoryview) and raw.obj is buf.view().obj and len(raw) == buf.size:
            return buf.writable()
        return None

    def _key_iv(self, seg: Segment) -> tuple[bytes | None, bytes | None]:
        if seg.key is None:
            return None, None
        return self.keys[seg.key.uri], seg.key.iv_for(seg.media_sequence)

    # -- progress -------------------------------------------------------------------------

    def bytes_done(self) -> int:
        return self.done_bytes + self.partial_bytes + sum(f.inflight_bytes for f in list(self.fetchers))

    def _emit(self, force: bool = False) -> None:

        now = time.monotonic()
        wire = sum(f.wire_bytes for f in list(self.fetchers))
        if self._speed_mark is None:
            self._speed_mark = (now, wire)
        elif now - self._speed_mark[0] >= SPEED_WINDOW_S:
            t0, w0 = self._speed_mark
            sample = (wire - w0) / (now - t0)
            self.speed = sample if self.speed == 0 else SPEED_SMOOTHING * sample + (1 - SPEED_SMOOTHING) * self.speed
            self._speed_mark = (now, wire)
        if not self.progress or (not force and now - self._last_emit < PROGRESS_INTERVAL_S):
            return
        self._last_emit = now
        done_bytes = self.bytes_done()
        if self.done:
            est_total = self.done_bytes / self.done * self.total
            percent = 100.0 * done_bytes / est_total if est_total else 0.0
            remaining = max(0.0, est_total - done_bytes)
            eta = remaining / self.speed if self.speed > 0 else None
        else:
            percent, eta = 0.0, None
        # never backwards (a stolen transfer drops the bytes past its cut)
        self._shown = (max(self._shown[0], done_bytes), max(self._shown[1], min(percent, 99.0)))
        self.progress(Progress(self._shown[0], self.done, self.total, self.speed, eta, self._shown[1]))
