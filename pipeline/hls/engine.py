"""The HLS download engine: playlist → verified segments in a part directory → one MP4.

``download()`` is the whole public surface. It owns concurrency (one thread and one
keep-alive curl session per worker), retries, resume and the final checks; the pure
parts live in :mod:`pipeline.hls.playlist` (parsing) and :mod:`pipeline.hls.payload`
(decrypt, strip, verify bytes).

Guarantees:
- nothing is ever written under ``out_path`` but a complete, verified MP4 (temp file,
  fsync, atomic rename);
- a segment that fails every retry fails the job with :class:`SegmentFailed` naming it —
  never a shorter video;
- a process killed at any moment leaves only whole, verified segments in ``part_dir``;
  the next call with the same ``part_dir`` fetches only the others;
- the MP4's duration is within half a segment of the playlist's total before the rename.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from pipeline.config import DownloadConfig, HttpConfig
from pipeline.errors import (Cancelled, PlaylistError, SegmentFailed, SourceBlocked, UpstreamError,
                             VerifyFailed)
from pipeline.http import HttpClient
from pipeline.hls.fetch import Fetcher, RateLimiter, Span, TransientError, UrlGuard, with_retries
from pipeline.hls.parts import PartDir, fingerprint
from pipeline.hls.payload import BadPayload, clean_init, clean_segment
from pipeline.hls.playlist import (InitSection, MasterPlaylist, MediaPlaylist, Segment, choose_variant,
                                   parse_playlist)
from pipeline.hls.remux import StreamingRemux, ffmpeg_exe, mp4_duration, probe_duration, remux

__all__ = ["DownloadResult", "HlsOptions", "Progress", "download", "load_media_playlist"]

PROGRESS_INTERVAL_S = 0.2
SPEED_WINDOW_S = 0.5
SPEED_SMOOTHING = 0.3  # weight of the newest sample in the moving average
MIN_SPLIT_PART_BYTES = 128 * 1024  # tail segments are split into ranges no smaller than this


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

    @classmethod
    def from_config(cls, download: DownloadConfig, http: HttpConfig,
                    headers: Mapping[str, str] | None = None) -> "HlsOptions":
        return cls(http=http, headers=dict(headers or {}), concurrency=download.concurrency,
                   segment_retries=download.segment_retries, stall_timeout_s=download.stall_timeout_s,
                   speed_limit_bytes_per_s=download.speed_limit_bytes_per_s,
                   ad_segment_regex=download.ad_segment_regex, variant=download.variant,
                   ffmpeg=download.ffmpeg, keep_parts=download.keep_parts)


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


def download(url: str, out_path: Path, *, part_dir: Path, options: HlsOptions = HlsOptions(),
             progress: Callable[[Progress], None] | None = None,
             cancel: threading.Event | None = None) -> DownloadResult:
    """Download the HLS stream at ``url`` into the MP4 ``out_path``.

    Parameters:
      url: a master or media playlist URL.
      out_path: the final MP4; written only by an atomic rename of a verified file.
      part_dir: this job's resumable state; reuse it to resume, it is removed after success
        unless ``options.keep_parts``.
      options: see :class:`HlsOptions`.
      progress: called from this thread with a :class:`Progress`, several times a second
        while fetching and once with ``percent == 100`` at the end.
      cancel: set it (from any thread) to stop promptly; the part directory is kept.

    Returns:
      A :class:`DownloadResult`.

    Raises:
      PlaylistError: live, empty, unsupported or unparsable playlist.
      UpstreamError / SourceBlocked: the playlist or a key could not be fetched.
      UnsafeURL: a playlist, key or segment URL is not allowed.
      SegmentFailed: a segment failed every retry (the part directory is kept).
      VerifyFailed: remux failed or the duration is off (the part directory is kept).
      MutexLost: another process is downloading into ``part_dir``.
      Cancelled: ``cancel`` was set.
    """
    out_path, part_dir = Path(out_path), Path(part_dir)
    cancel = cancel or threading.Event()
    guard = UrlGuard(options.http.allow_private_urls)
    with HttpClient(options.http, headers=options.headers) as client:
        media = load_media_playlist(client, url, guard=guard, variant=options.variant,
                                    retries=options.segment_retries, cancel=cancel)
        segments = _select(media, options.ad_segment_regex)
        keys = _fetch_keys(client, segments, guard=guard, retries=options.segment_retries, cancel=cancel)
    expected_s = sum(s.duration_s for s in segments)
    info = {"url": url, "media_url": media.url, "segments": len(segments), "expected_duration_s": expected_s}
    parts = PartDir.open(part_dir, fingerprint(media, segments), info)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    job = _Job(options, guard, parts, keys, media.is_fmp4, cancel, progress)
    try:
        inits = job.fetch_inits(media.inits)
        files = [parts.segment_path(s.index, job.fmp4) for s in segments]
        runs = _runs(segments, files, inits)
        # One continuous run (the usual case): ffmpeg remuxes while the segments arrive.
        streaming = StreamingRemux(options.ffmpeg, runs[0], tmp, fmp4=job.fmp4) if len(runs) == 1 else None
        try:
            if streaming:
                for f in runs[0]:
                    if f.exists():
                        streaming.ready(f)
                job.on_segment = streaming.ready
            fetched = job.fetch_segments(segments)
            missing = [s.index for s, f in zip(segments, files) if not f.exists()]
            if missing:
                raise VerifyFailed(f"{len(missing)} segment(s) missing after download: {missing[:10]}")
            if streaming:
                streaming.finish(cancel)
            else:
                remux(options.ffmpeg, runs, tmp, fmp4=job.fmp4, work_dir=parts.root, cancel=cancel)
        except BaseException:
            if streaming:
                streaming.abort()
            raise
        duration_s, size = _verify_and_rename(options.ffmpeg, tmp, out_path, expected_s,
                                              max(s.duration_s for s in segments), parts.root)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        parts.close()
    if not options.keep_parts:
        parts.remove()
    if progress:
        progress(Progress(job.bytes_done(), len(segments), len(segments), job.speed, 0.0, 100.0))
    return DownloadResult(path=out_path, duration_s=duration_s, expected_duration_s=expected_s,
                          segments=len(segments), bytes=size, segments_fetched=fetched)


def load_media_playlist(client: HttpClient, url: str, *, guard: UrlGuard, variant: str = "highest",
                        retries: int = 3, cancel: threading.Event | None = None) -> MediaPlaylist:
    """Fetch ``url``; for a master playlist, pick the variant and fetch its media playlist."""
    cancel = cancel or threading.Event()
    text, final_url = _get_text(client, url, guard, retries, cancel)
    pl = parse_playlist(text, final_url)
    if isinstance(pl, MasterPlaylist):
        chosen = choose_variant(pl, variant)
        text, final_url = _get_text(client, chosen.url, guard, retries, cancel)
        pl = parse_playlist(text, final_url)
        if isinstance(pl, MasterPlaylist):
            raise PlaylistError(f"variant {chosen.url} is itself a master playlist")
    return pl


def _get_text(client: HttpClient, url: str, guard: UrlGuard, retries: int,
              cancel: threading.Event) -> tuple[str, str]:
    guard.check(url)

    def attempt() -> tuple[str, str]:
        try:
            r = client.get(url)
        except UpstreamError as e:  # network failure after the client's own quick retries
            raise TransientError(e.detail) from None
        guard.check(r.url)
        if r.status == 200 and not r.is_challenge:
            return r.text, r.url
        if r.is_challenge or r.status in (403, 451):
            raise SourceBlocked("hls", detail=f"playlist {url}", status=r.status)
        if r.status in (404, 410):
            raise UpstreamError("hls", detail=f"playlist {url} not found (expired token?)", status=r.status)
        raise TransientError(f"HTTP {r.status}")

    got, reason = with_retries(attempt, retries=retries, stop=cancel)
    if got is None:
        raise UpstreamError("hls", detail=f"playlist {url}: {reason}")
    return got  # type: ignore[return-value]


def _select(media: MediaPlaylist, ad_regex: str | None) -> list[Segment]:
    segments = list(media.segments)
    if ad_regex:
        pattern = re.compile(ad_regex)
        segments = [s for s in segments if not pattern.search(s.url)]
        if not segments:
            raise PlaylistError(f"every segment matches ad_segment_regex {ad_regex!r}")
    return segments


def _fetch_keys(client: HttpClient, segments: list[Segment], *, guard: UrlGuard, retries: int,
                cancel: threading.Event) -> dict[str, bytes]:
    uris = {s.key.uri for s in segments if s.key} | {s.init.key.uri for s in segments if s.init and s.init.key}
    keys: dict[str, bytes] = {}
    for uri in sorted(uris):
        guard.check(uri)

        def attempt(uri: str = uri) -> bytes:
            try:
                r = client.get(uri)
            except UpstreamError as e:
                raise TransientError(e.detail) from None
            guard.check(r.url)
            if r.status != 200:
                raise TransientError(f"HTTP {r.status}")
            if len(r.content) != 16:
                raise TransientError(f"key is {len(r.content)} bytes, not 16")
            return r.content

        got, reason = with_retries(attempt, retries=retries, stop=cancel)
        if got is None:
            raise UpstreamError("hls", detail=f"AES key {uri}: {reason}")
        keys[uri] = got  # type: ignore[assignment]
    return keys


def _runs(segments: list[Segment], files: list[Path], inits: dict[InitSection, Path]) -> list[list[Path]]:
    """Continuous runs (same discontinuity sequence and init section), each led by its init file."""
    runs: list[list[Path]] = []
    prev: tuple[int, InitSection | None] | None = None
    for s, f in zip(segments, files):
        here = (s.discontinuity_seq, s.init)
        if here != prev:
            runs.append([inits[s.init]] if s.init else [])
            prev = here
        runs[-1].append(f)
    return runs


def _verify_and_rename(ffmpeg: str | None, tmp: Path, out_path: Path, expected_s: float,
                       max_segment_s: float, part_root: Path) -> tuple[float, int]:
    """Check the remuxed file's duration, make it durable, rename it into place."""
    duration_s = mp4_duration(tmp)
    if duration_s is None:  # not a layout we parse: ask ffmpeg
        duration_s = probe_duration(ffmpeg_exe(ffmpeg), tmp)
    tolerance_s = max_segment_s / 2
    if abs(duration_s - expected_s) > tolerance_s:
        raise VerifyFailed(f"MP4 lasts {duration_s:.2f} s but the playlist {expected_s:.2f} s "
                           f"(allowed ±{tolerance_s:.2f} s); parts kept in {part_root}")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, out_path)
    _fsync_dir(out_path.parent)
    return duration_s, out_path.stat().st_size


def _remove_stale_temps(out_path: Path) -> None:
    """Delete temp MP4s that a killed run (its PID gone) left beside ``out_path``."""
    for p in out_path.parent.glob(f".{out_path.name}.*.tmp"):
        pid = p.name[len(out_path.name) + 2:-len(".tmp")]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            alive = int(pid) != os.getpid()
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            p.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Failed(Exception):
    """A segment (or a part of it) failed every retry."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Unit:
    """One piece of work: a whole segment, or part ``part`` of ``nparts`` of it."""

    seg: Segment
    part: int = 0
    nparts: int = 1


class _Split:
    """The parts of one segment that several workers fetch at once."""

    def __init__(self, nparts: int):
        self.nparts = nparts
        self.lock = threading.Lock()
        self.bounds: list[int] | None = None  # part start offsets; [] = not split after all
        self.spans: dict[int, Span] = {}


def _assemble(seg: Segment, bounds: list[int], spans: list[Span]) -> bytes | None:
    """Join the parts of a split segment; None when they do not add up to one whole body."""
    for sp in spans:
        if sp.whole:  # the server ignored Range: this part is the whole resource
            if seg.byterange:
                br = seg.byterange
                return bytes(sp.data[br.offset:br.offset + br.length]) if len(sp.data) >= br.offset + br.length else None
            return bytes(sp.data)
    if seg.byterange:
        total = seg.byterange.length
    else:
        totals = {sp.total for sp in spans if sp.total is not None}
        if len(totals) != 1:
            return None
        total = totals.pop()
    ends = bounds[1:] + [total]
    for start, end, sp in zip(bounds, ends, spans):
        if len(sp.data) != max(0, min(end, total) - start):
            return None
    body = b"".join(sp.data for sp in spans)
    return body if len(body) == total else None


class _Job:
    """The fetching half of one download: worker threads, progress, failure policy."""

    def __init__(self, options: HlsOptions, guard: UrlGuard, parts: PartDir, keys: dict[str, bytes],
                 fmp4: bool, cancel: threading.Event, progress: Callable[[Progress], None] | None):
        self.options, self.guard, self.parts, self.keys = options, guard, parts, keys
        self.fmp4, self.cancel, self.progress = fmp4, cancel, progress
        self.stop = threading.Event()
        self.limiter = RateLimiter(options.speed_limit_bytes_per_s)
        self.fetchers: list[Fetcher] = []
        self.on_segment: Callable[[Path], None] | None = None  # called (from a worker) per stored segment
        self.total = 0
        self.done = 0
        self.done_bytes = 0  # bytes of complete segments (kept ones count their size on disk)
        self.partial_bytes = 0  # bytes of stored parts of split segments not yet complete
        self._count_lock = threading.Lock()
        self.known_sizes: list[int] = []
        self.splits: dict[int, _Split] = {}
        self.speed = 0.0
        self._speed_mark: tuple[float, int] | None = None
        self._last_emit = 0.0

    def _new_fetcher(self) -> Fetcher:
        o = self.options
        f = Fetcher(o.http, o.headers, guard=self.guard, limiter=self.limiter, stop=self.stop,
                    stall_timeout_s=o.stall_timeout_s)
        self.fetchers.append(f)
        return f

    def fetch_inits(self, inits: tuple[InitSection, ...]) -> dict[InitSection, Path]:
        """Fetch every fMP4 initialisation section (small; done before the segments)."""
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
            fetcher.close()
            self.fetchers.remove(fetcher)
        return out

    def fetch_segments(self, segments: list[Segment]) -> int:
        """Fetch every segment not already complete in the part directory; returns how many were fetched.

        Work is queued in playlist order. The last segments — those that would leave
        connections idle in the final round — are split into byte ranges fetched by several
        workers at once, so the download does not end on a half-empty round.
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
        todo: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        units = self._plan_units(pending)
        for u in units:
            todo.put(u)
        results: queue.SimpleQueue[tuple[str, Segment | None, object]] = queue.SimpleQueue()
        workers = [threading.Thread(target=self._worker, args=(todo, results), daemon=True,
                                    name=f"hls-worker-{n}")
                   for n in range(min(self.options.concurrency, len(units)))]
        fetched = 0
        try:
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

    def _plan_units(self, pending: list[Segment]) -> list["_Unit"]:
        conc = self.options.concurrency
        tail = len(pending) % conc if len(pending) > conc else len(pending)
        nparts = conc // tail if tail else 1
        if nparts < 2:
            return [_Unit(s) for s in pending]
        head, tail_segs = pending[:-tail], pending[-tail:]
        for s in tail_segs:
            self.splits[s.index] = _Split(nparts)
        return [_Unit(s) for s in head] + [_Unit(s, j, nparts) for s in tail_segs for j in range(nparts)]

    def _worker(self, todo: "queue.SimpleQueue[_Unit]",
                results: "queue.SimpleQueue[tuple[str, Segment | None, object]]") -> None:
        fetcher = self._new_fetcher()
        seg: Segment | None = None
        try:
            while not self.stop.is_set():
                try:
                    unit = todo.get_nowait()
                except queue.Empty:
                    return
                seg = unit.seg
                try:
                    if unit.nparts == 1:
                        got = self._fetch_whole(fetcher, seg)
                    else:
                        got = self._fetch_part(fetcher, unit)
                except _Failed as e:
                    results.put(("failed", seg, e.reason))
                    return
                if got is None:  # a part stored; another worker completes the segment
                    continue
                raw_len, data = got
                if self.stop.is_set():
                    return
                path = self.parts.segment_path(seg.index, self.fmp4)
                PartDir.write_atomic(path, data)
                fetcher.inflight_bytes = 0
                self.known_sizes.append(raw_len)  # before this worker plans a split from the mean
                if self.on_segment:
                    self.on_segment(path)
                results.put(("done", seg, raw_len))
        except Cancelled:
            return
        except BaseException as e:  # UnsafeURL, OSError (disk full), anything unexpected
            if not self.stop.is_set():
                results.put(("error", seg, e))
        finally:
            fetcher.close()

    def _key_iv(self, seg: Segment) -> tuple[bytes | None, bytes | None]:
        if seg.key is None:
            return None, None
        return self.keys[seg.key.uri], seg.key.iv_for(seg.media_sequence)

    def _fetch_whole(self, fetcher: Fetcher, seg: Segment) -> tuple[int, bytes]:
        key, iv = self._key_iv(seg)

        def attempt() -> tuple[int, bytes]:
            raw = fetcher.get(seg.url, seg.byterange)
            return len(raw), clean_segment(raw, key=key, iv=iv, fmp4=self.fmp4)

        got, reason = with_retries(attempt, retries=self.options.segment_retries, stop=self.stop)
        if got is None:
            raise _Failed(reason)
        return got  # type: ignore[return-value]

    def _fetch_part(self, fetcher: Fetcher, unit: "_Unit") -> tuple[int, bytes] | None:
        """Fetch one byte range of a split segment; the worker storing the last part assembles it."""
        seg, split = unit.seg, self.splits[unit.seg.index]
        with split.lock:
            if split.bounds is None:
                split.bounds = self._split_bounds(seg, split.nparts)
            bounds = split.bounds
        if not bounds:  # size unknown or too small to split: part 0 takes the whole segment
            return self._fetch_whole(fetcher, seg) if unit.part == 0 else None
        j = unit.part
        first = bounds[j]
        last = bounds[j + 1] - 1 if j + 1 < len(bounds) else (seg.byterange.length - 1 if seg.byterange else None)
        base = seg.byterange.offset if seg.byterange else 0
        got, reason = with_retries(
            lambda: fetcher.get_span(seg.url, base + first, None if last is None else base + last),
            retries=self.options.segment_retries, stop=self.stop)
        if got is None:
            raise _Failed(f"byte range {first}-{'' if last is None else last}: {reason}")
        span: Span = got  # type: ignore[assignment]
        fetcher.inflight_bytes = 0
        with split.lock, self._count_lock:
            split.spans[j] = span
            self.partial_bytes += len(span.data)
            if len(split.spans) < len(bounds):
                return None
            spans = [split.spans[n] for n in range(len(bounds))]
            self.partial_bytes -= sum(len(sp.data) for sp in spans)
        raw = _assemble(seg, bounds, spans)
        if raw is not None:
            key, iv = self._key_iv(seg)
            try:
                return len(raw), clean_segment(raw, key=key, iv=iv, fmp4=self.fmp4)
            except BadPayload:
                pass
        return self._fetch_whole(fetcher, seg)  # the ranges did not add up: fetch it in one piece

    def _split_bounds(self, seg: Segment, nparts: int) -> list[int]:
        """Start offsets of the parts, from the exact size (byte ranges) or the mean size so far."""
        if seg.byterange:
            size = seg.byterange.length
        elif self.known_sizes:
            size = sum(self.known_sizes) // len(self.known_sizes)
        else:
            return []
        part = size // nparts
        if part < MIN_SPLIT_PART_BYTES:
            nparts = max(1, size // MIN_SPLIT_PART_BYTES)
            part = size // nparts
        if nparts < 2:
            return []
        return [n * part for n in range(nparts)]

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
            percent = 0.0
            eta = None
        self.progress(Progress(done_bytes, self.done, self.total, self.speed, eta, min(percent, 99.0)))


# BadPayload is a ValueError and is retried by with_retries; re-exported for callers' except clauses.
__all__ += ["BadPayload"]
