"""The HLS download engine: playlist → verified segments in a part directory → one MP4.

``download()`` is the whole public surface. It owns concurrency (one thread and one
keep-alive curl session per worker), retries, resume and the final checks; the pure
parts live in :mod:`pipeline.hls.playlist` (parsing) and :mod:`pipeline.hls.payload`
(decrypt, strip, verify bytes).

Guarantees:
- nothing is ever written under ``out_path`` but a complete, verified MP4 (temp file,
  fsync, mode set, atomic rename, directory fsync);
- a segment that fails every retry fails the job with :class:`SegmentFailed` naming it —
  never a shorter video;
- a process killed at any moment leaves only whole, verified segments in ``part_dir``;
  the next call with the same ``part_dir`` fetches only the others;
- the MP4's duration is within half a segment of the playlist's total before the rename.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Callable

from pipeline.errors import (PlaylistError, SourceBlocked, SourceNotFound, UnresolvableHost, UpstreamError,
                             VerifyFailed)
from pipeline.files import dir_mode_for, fsync_path, make_dirs
from pipeline.http import HttpClient
from pipeline.hls.fetch import TransientError, UrlGuard, with_retries
from pipeline.hls.parts import PartDir, fingerprint
from pipeline.hls.playlist import (InitSection, MasterPlaylist, MediaPlaylist, Segment, choose_variant,
                                   parse_playlist)
from pipeline.hls.remux import StreamingRemux, ffmpeg_exe, mp4_duration, probe_duration, remux
from pipeline.hls.types import DownloadResult, HlsOptions, Progress
from pipeline.hls.workers import Workers
from pipeline.status import status_error

__all__ = ["DownloadResult", "HlsOptions", "Progress", "download", "load_media_playlist"]


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
    guard = UrlGuard(options.http.allow_private_urls, via_proxy=bool(options.http.proxy))
    with HttpClient(options.http, headers=options.headers) as client:
        media = load_media_playlist(client, url, guard=guard, variant=options.variant,
                                    retries=options.segment_retries, cancel=cancel)
        segments = _select(media, options.ad_segment_regex)
        keys = _fetch_keys(client, segments, guard=guard, retries=options.segment_retries, cancel=cancel)
    expected_s = sum(s.duration_s for s in segments)
    info = {"url": url, "media_url": media.url, "segments": len(segments), "expected_duration_s": expected_s}
    parts = PartDir.open(part_dir, fingerprint(media, segments), info)
    make_dirs(out_path.parent, dir_mode_for(options.file_mode))
    _remove_stale_temps(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    job = Workers(options, guard, parts, keys, media.is_fmp4, cancel, progress)
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
            fetched = job.run(segments)
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
                                              max(s.duration_s for s in segments), parts.root,
                                              options.file_mode)
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
                          segments=len(segments), bytes=size, segments_fetched=fetched,
                          buffers=job.buffers.created, buffer_bytes=job.buffers.held_bytes())


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
    _precheck(guard, url, "playlist")

    def attempt() -> tuple[str, str]:
        try:
            r = client.get(url)
        except UpstreamError as e:  # network failure after the client's own quick retries
            raise TransientError(e.detail) from None
        guard.check(r.url)
        kind = status_error(r.status, is_challenge=r.is_challenge)
        if kind is None:
            return r.text, r.url
        if kind is SourceBlocked:
            raise SourceBlocked("hls", detail=f"playlist {url}", status=r.status)
        if kind is SourceNotFound:
            # The URL came from a resolved page: gone means its token expired; resolving
            # again (a retry of the stage) can fix it, so this is retriable, not "not found".
            raise UpstreamError("hls", detail=f"playlist {url} not found (expired token?)", status=r.status)
        raise TransientError(f"HTTP {r.status}")  # a 5xx or an odd status: retried here

    got, reason = with_retries(attempt, retries=retries, stop=cancel)
    if got is None:
        raise UpstreamError("hls", detail=f"playlist {url}: {reason}")
    return got  # type: ignore[return-value]


def _precheck(guard: UrlGuard, url: str, what: str) -> None:
    """Refuse an unsafe URL (permanent); a host without an address is a network failure
    (retriable: DNS may come back), refused all the same."""
    try:
        guard.check(url)
    except UnresolvableHost as e:
        raise UpstreamError("hls", detail=f"{what} {url}: {e.reason}") from None


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
        _precheck(guard, uri, "key")

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
                       max_segment_s: float, part_root: Path, file_mode: int | None) -> tuple[float, int]:
    """Check the remuxed file's duration, make it durable, give it its mode, rename it into place.

    ffmpeg created the temp file ``0666 & ~umask`` (a normal file); an explicit ``file_mode``
    is set on it before the rename, so the final name never shows another mode."""
    duration_s = mp4_duration(tmp)
    if duration_s is None:  # not a layout we parse: ask ffmpeg
        duration_s = probe_duration(ffmpeg_exe(ffmpeg), tmp)
    tolerance_s = max_segment_s / 2
    if abs(duration_s - expected_s) > tolerance_s:
        raise VerifyFailed(f"MP4 lasts {duration_s:.2f} s but the playlist {expected_s:.2f} s "
                           f"(allowed ±{tolerance_s:.2f} s); parts kept in {part_root}")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        if file_mode is not None:
            os.fchmod(fd, file_mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, out_path)
    fsync_path(out_path.parent)
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
