"""Joining verified segments into one MP4 with ffmpeg ``-c copy``, and reading its duration.

One continuous run of segments (the usual case) is streamed into ffmpeg's stdin: no joined
copy on disk. A playlist with discontinuities (timestamps restart) is joined per run into a
file, and the runs are put together by ffmpeg's concat demuxer, which offsets each run's
timestamps. fMP4 runs start with their initialisation section.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import re
import signal
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Sequence

from pipeline.errors import Cancelled, VerifyFailed
from pipeline.hls.bundled_ffmpeg import bundled_ffmpeg

CHUNK_BYTES = 1 << 20
FLUSH_EVERY_BYTES = 32 << 20
# ffmpeg's stdin: a 1 MiB pipe (Linux default 64 KiB) means ~16x fewer wake-ups on both sides.
PIPE_BYTES = 1 << 20
_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d\d):(\d\d(?:\.\d+)?)")


@functools.lru_cache(maxsize=8)
def ffmpeg_exe(configured: str | None) -> str:
    """The configured ffmpeg, else the bundled one (found on disk; imageio-ffmpeg is asked,
    which runs it once to check it, ~0.1 s, only when the wheel's layout is not the known one)."""
    if configured:
        return configured
    found = bundled_ffmpeg()
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _out_args(out: Path, fmp4: bool) -> list[str]:
    args = ["-map", "0:v?", "-map", "0:a?", "-c", "copy"]
    if not fmp4:
        args += ["-bsf:a", "aac_adtstoasc"]
    return args + ["-f", "mp4", "-y", str(out)]


class StreamingRemux:
    """ffmpeg remuxing one continuous run from its stdin while the segments still arrive.

    ``files`` are fed strictly in order; a file is fed once :meth:`ready` was called for it
    (the segment is complete on disk). The remux so overlaps the download, and only the
    MP4's index is written after the last segment.
    """

    def __init__(self, ffmpeg: str | None, files: Sequence[Path], out: Path, *, fmp4: bool):
        self._ffmpeg = ffmpeg
        self._out = out
        self._fmp4 = fmp4
        self._files = list(files)
        self._ready: set[Path] = set()
        self._cond = threading.Condition()
        self._aborted = False
        self._proc: subprocess.Popen | None = None
        self._start_error: Exception | None = None
        self._err = tempfile.TemporaryFile()
        # ffmpeg is located and started by the feed thread, off the download's critical path.
        self._thread = threading.Thread(target=self._feed, name="hls-remux-feed", daemon=True)
        self._thread.start()

    def _start(self) -> subprocess.Popen | None:
        try:
            exe = ffmpeg_exe(self._ffmpeg)
        except RuntimeError as e:
            self._start_error = e
            return None
        cmd = [exe, "-hide_banner", "-nostats", "-loglevel", "error",
               "-f", "mp4" if self._fmp4 else "mpegts", "-i", "pipe:0", *_out_args(self._out, self._fmp4)]
        with self._cond:
            if self._aborted:
                return None
            try:
                self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                              stderr=self._err, bufsize=0)
            except OSError as e:
                self._start_error = e
                return None
            _widen_pipe(self._proc.stdin)
            return self._proc

    def ready(self, path: Path) -> None:
        """``path`` is complete on disk (thread-safe)."""
        with self._cond:
            self._ready.add(path)
            self._cond.notify_all()

    def _feed(self) -> None:
        proc = self._start()
        stdin = proc.stdin if proc else None
        if stdin is None:
            return
        fed = flushed = 0
        try:
            for f in self._files:
                with self._cond:
                    while f not in self._ready and not self._aborted:
                        self._cond.wait()
                    if self._aborted:
                        return
                fed += _send_file(f, stdin.fileno())
                if fed - flushed >= FLUSH_EVERY_BYTES:
                    flushed = fed
                    start_writeback(self._out)
        except (BrokenPipeError, ValueError, OSError):
            self._broken = True  # ffmpeg died (its status says why) or abort() closed the pipe
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def finish(self, cancel: threading.Event) -> None:
        """Wait for the feed and ffmpeg to end. Call once every file is :meth:`ready`.

        Raises:
          VerifyFailed: ffmpeg failed. Cancelled: ``cancel`` was set.
        """
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.2)
                if cancel.is_set():
                    raise Cancelled("download cancelled while remuxing")
            if self._proc is None:
                raise VerifyFailed(f"cannot start ffmpeg {self._ffmpeg or '(bundled)'}: {self._start_error}")
            while True:
                try:
                    rc = self._proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if cancel.is_set():
                        raise Cancelled("download cancelled while remuxing") from None
            if rc != 0:
                raise ffmpeg_failed("remux", rc, self._stderr_tail())
        except BaseException:
            self.abort()
            raise
        finally:
            self._err.close()

    def abort(self) -> None:
        """Stop feeding and kill ffmpeg (safe to call more than once)."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()
            proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._thread.join(timeout=5)
        try:
            self._err.close()
        except OSError:
            pass

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        tail = self._err.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return " | ".join(tail) or "no message"


def _send_file(path: Path, out_fd: int) -> int:
    """Copy the file at ``path`` into ``out_fd`` (a pipe) in the kernel: no pass through Python's
    memory, so feeding the remuxer neither copies the stream through user space nor holds it."""
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(out_fd, src.fileno(), offset, size - offset)
            if sent == 0:  # the file shrank under us: it was complete when announced, so a bug
                raise OSError(errno.EIO, f"{path.name} ended at {offset} of {size} bytes while fed to ffmpeg")
            offset += sent
    return size


def start_writeback(path: Path) -> None:
    """Have the kernel start writing ``path``'s dirty pages to disk, without waiting for it.

    The final fsync before the MP4's rename then has little left to do. An fsync here (as
    before) blocked the feed for 15-100 ms every 32 MB while ffmpeg, the critical path on a
    fast link, starved for input. ``POSIX_FADV_DONTNEED`` queues the writeback (Linux:
    ``WB_SYNC_NONE``) and drops the pages already clean; ffmpeg appends (it goes back once,
    at the end, to patch a box size: one page). Where the advice is not supported nothing
    happens, and the final fsync does all the work.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (OSError, AttributeError):  # not Linux, or a file system without the advice
        pass
    finally:
        os.close(fd)


def _widen_pipe(pipe: object) -> None:
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[attr-defined]
    except (OSError, AttributeError):  # a lower /proc/sys/fs/pipe-max-size: the default works too
        pass


def ffmpeg_failed(what: str, rc: int, tail: str) -> Exception:
    """The error for an ffmpeg that exited ``rc``: a full disk as the OSError it is, so the
    job's reason says the disk is full (not a remux bug); anything else VerifyFailed.

    Under a file-size limit (RLIMIT_FSIZE) ffmpeg is killed by SIGXFSZ before it can print
    anything; on a full file system it prints the ENOSPC message and exits non-zero.
    """
    if rc == -signal.SIGXFSZ:
        return OSError(errno.EFBIG, f"file too large: ffmpeg {what} was stopped by the file size limit (SIGXFSZ)")
    if "No space left on device" in tail:
        return OSError(errno.ENOSPC, f"no space left on device: ffmpeg {what} failed: {tail}")
    return VerifyFailed(f"ffmpeg {what} failed (exit {rc}): {tail}")


def remux(ffmpeg: str | None, runs: Sequence[Sequence[Path]], out: Path, *, fmp4: bool,
          work_dir: Path, cancel: threading.Event) -> None:
    """Write ``out`` (MP4) from ``runs``: lists of complete segment files, each one continuous run.

    Raises:
      VerifyFailed: ffmpeg failed; the message carries its last error lines.
      Cancelled: ``cancel`` was set.
    """
    if len(runs) == 1:
        job = StreamingRemux(ffmpeg, runs[0], out, fmp4=fmp4)
        for f in runs[0]:
            job.ready(f)
        job.finish(cancel)
        return
    listing = []
    ext = "mp4" if fmp4 else "ts"
    joined_files = [work_dir / f"run-{n:04d}.{ext}" for n in range(len(runs))]
    list_file = work_dir / "runs.txt"
    try:
        for files, joined in zip(runs, joined_files):
            with open(joined, "wb") as dst:
                for f in files:
                    if cancel.is_set():
                        raise Cancelled("download cancelled while joining")
                    with open(f, "rb") as src:
                        while chunk := src.read(CHUNK_BYTES):
                            dst.write(chunk)
            listing.append(f"file '{joined.resolve()}'")
        list_file.write_text("\n".join(listing) + "\n")
        cmd = [ffmpeg_exe(ffmpeg), "-hide_banner", "-nostats", "-loglevel", "error", "-nostdin",
               "-f", "concat", "-safe", "0", "-i", str(list_file), *_out_args(out, fmp4)]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            try:
                while True:
                    try:
                        rc = proc.wait(timeout=0.2)
                        break
                    except subprocess.TimeoutExpired:
                        if cancel.is_set():
                            raise Cancelled("download cancelled while remuxing") from None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if rc != 0:
                err.seek(0)
                tail = err.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                raise ffmpeg_failed("concat", rc, " | ".join(tail) or "no message")
    finally:
        for joined in joined_files:
            joined.unlink(missing_ok=True)
        list_file.unlink(missing_ok=True)


def mp4_duration(path: Path) -> float | None:
    """The movie duration in the MP4's ``moov/mvhd`` box (what players show); None if unreadable.

    Reads a few header bytes per top-level box, seeking over ``mdat``: fast for any size.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            pos = 0
            while pos + 8 <= size:
                f.seek(pos)
                head = f.read(16)
                box_size, box_type = struct.unpack(">I4s", head[:8])
                header = 8
                if box_size == 1 and len(head) == 16:
                    (box_size,) = struct.unpack(">Q", head[8:16])
                    header = 16
                elif box_size == 0:
                    box_size = size - pos
                if box_size < header:
                    return None
                if box_type == b"moov":
                    f.seek(pos + header)
                    return _mvhd_duration(f.read(min(box_size - header, 1 << 26)))
                pos += box_size
    except OSError:
        return None
    return None


def _mvhd_duration(moov: bytes) -> float | None:
    pos = 0
    while pos + 8 <= len(moov):
        box_size, box_type = struct.unpack(">I4s", moov[pos:pos + 8])
        if box_size < 8:
            return None
        if box_type == b"mvhd":
            body = moov[pos + 8:pos + box_size]
            if body[:1] == b"\x01" and len(body) >= 32:
                timescale, duration = struct.unpack(">IQ", body[20:32])
            elif len(body) >= 20:
                timescale, duration = struct.unpack(">II", body[12:20])
            else:
                return None
            return duration / timescale if timescale else None
        pos += box_size
    return None


def probe_duration(ffmpeg: str, path: Path) -> float:
    """The container duration ffmpeg reports for ``path`` (there is no ffprobe in the bundle).

    Raises:
      VerifyFailed: ffmpeg reports no duration.
    """
    proc = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace")
    m = _DURATION_RE.search(proc.stderr)
    if not m:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise VerifyFailed(f"cannot read the duration of {path.name}: {tail or 'no output'}")
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)
