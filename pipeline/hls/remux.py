"""Joining verified segments into one MP4 with ffmpeg ``-c copy``, and reading its duration.

One continuous run of segments (the usual case) is streamed into ffmpeg's stdin: no joined
copy on disk. A playlist with discontinuities (timestamps restart) is joined per run into a
file, and the runs are put together by ffmpeg's concat demuxer, which offsets each run's
timestamps. fMP4 runs start with their initialisation section.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Sequence

from pipeline.errors import Cancelled, VerifyFailed

CHUNK_BYTES = 1 << 20
_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d\d):(\d\d(?:\.\d+)?)")


def ffmpeg_exe(configured: str | None) -> str:
    if configured:
        return configured
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def remux(ffmpeg: str, runs: Sequence[Sequence[Path]], out: Path, *, fmp4: bool,
          work_dir: Path, cancel: threading.Event) -> None:
    """Write ``out`` (MP4) from ``runs``: lists of segment files, each list one continuous run.

    Raises:
      VerifyFailed: ffmpeg failed; the message carries its last error lines.
      Cancelled: ``cancel`` was set.
    """
    out_args = ["-map", "0:v?", "-map", "0:a?", "-c", "copy"]
    if not fmp4:
        out_args += ["-bsf:a", "aac_adtstoasc"]
    out_args += ["-f", "mp4", "-y", str(out)]
    if len(runs) == 1:
        fmt = "mp4" if fmp4 else "mpegts"
        _run(ffmpeg, ["-f", fmt, "-i", "pipe:0", *out_args], runs[0], cancel)
        return
    listing = []
    ext = "mp4" if fmp4 else "ts"
    for n, files in enumerate(runs):
        joined = work_dir / f"run-{n:04d}.{ext}"
        with open(joined, "wb") as dst:
            for f in files:
                if cancel.is_set():
                    raise Cancelled("download cancelled while joining")
                with open(f, "rb") as src:
                    while chunk := src.read(CHUNK_BYTES):
                        dst.write(chunk)
        listing.append(f"file '{joined.resolve()}'")
    list_file = work_dir / "runs.txt"
    list_file.write_text("\n".join(listing) + "\n")
    try:
        _run(ffmpeg, ["-f", "concat", "-safe", "0", "-i", str(list_file), *out_args], [], cancel)
    finally:
        for n in range(len(runs)):
            (work_dir / f"run-{n:04d}.{ext}").unlink(missing_ok=True)
        list_file.unlink(missing_ok=True)


def _run(ffmpeg: str, args: list[str], feed: Sequence[Path], cancel: threading.Event) -> None:
    cmd = [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", *args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            if feed and proc.stdin is not None:
                try:
                    for f in feed:
                        if cancel.is_set():
                            raise Cancelled("download cancelled while remuxing")
                        with open(f, "rb") as src:
                            while chunk := src.read(CHUNK_BYTES):
                                proc.stdin.write(chunk)
                except BrokenPipeError:
                    pass  # ffmpeg stopped early: its exit status and stderr say why
                finally:
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
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
            raise VerifyFailed(f"ffmpeg remux failed (exit {rc}): {' | '.join(tail) or 'no message'}")


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
