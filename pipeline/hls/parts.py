"""The part directory: resumable state of one download.

Layout::

    part_dir/
      .lock            flock held while a process works here (released by the kernel on SIGKILL)
      manifest.json    ties the directory to one playlist (fingerprint of its segment list)
      seg/000042.ts    a segment, decrypted and verified, written via temp file + rename
      seg/init-0.mp4   an fMP4 initialisation section

A segment file exists only when complete: it is written to a temp name and renamed, so a
process killed at any moment leaves either nothing or the whole, verified segment. A
restart trusts those files and fetches the rest. The fingerprint uses URL paths, not
query strings, so a re-resolved playlist whose tokens changed still resumes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from pipeline.errors import MutexLost
from pipeline.hls.playlist import MediaPlaylist, Segment

MANIFEST_VERSION = 1


def fingerprint(media: MediaPlaylist, segments: Iterable[Segment]) -> str:
    """A digest of what identifies the stream's content: segment paths, ranges, durations, keys."""
    h = hashlib.sha256()
    for s in segments:
        key = (urlsplit(s.key.uri).path, s.key.iv.hex() if s.key.iv else "") if s.key else None
        init = urlsplit(s.init.url).path if s.init else None
        br = (s.byterange.length, s.byterange.offset) if s.byterange else None
        h.update(json.dumps([s.index, urlsplit(s.url).path, br, round(s.duration_s, 3),
                             s.media_sequence, key, init]).encode())
    return h.hexdigest()


class PartDir:
    """A locked part directory; use :meth:`open` and close it (or use it as a context manager)."""

    def __init__(self, root: Path, lock_fd: int):
        self.root = root
        self.seg_dir = root / "seg"
        self._lock_fd = lock_fd
        self.resumed = False

    @classmethod
    def open(cls, root: Path, fp: str, info: dict | None = None) -> "PartDir":
        """Lock ``root`` and make it hold the stream ``fp``; stale contents of another stream are dropped.

        Raises:
          MutexLost: another process is downloading into this part directory right now.
        """
        root = Path(root)
        (root / "seg").mkdir(parents=True, exist_ok=True)
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MutexLost(f"part directory {root} is in use by another download") from None
        self = cls(root, fd)
        manifest = root / "manifest.json"
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            old = None
        if old and old.get("version") == MANIFEST_VERSION and old.get("fingerprint") == fp:
            self.resumed = True
        else:
            shutil.rmtree(self.seg_dir, ignore_errors=True)
            self.seg_dir.mkdir()
            self.write_atomic(manifest, json.dumps({"version": MANIFEST_VERSION, "fingerprint": fp,
                                                    **(info or {})}, indent=1).encode())
        for stale in self.seg_dir.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        return self

    @classmethod
    def reset(cls, root: Path) -> None:
        """Forget an earlier run's segments (waits for nobody: raises if the directory is in use)."""
        parts = cls.open(root, fp="")
        try:
            shutil.rmtree(parts.seg_dir, ignore_errors=True)
            (parts.root / "manifest.json").unlink(missing_ok=True)
        finally:
            parts.close()

    def segment_path(self, index: int, fmp4: bool) -> Path:
        return self.seg_dir / f"{index:06d}.{'m4s' if fmp4 else 'ts'}"

    def init_path(self, number: int) -> Path:
        return self.seg_dir / f"init-{number}.mp4"

    @staticmethod
    def complete_size(path: Path, fmp4: bool) -> int:
        """Size of a segment file left by an earlier run, or 0 when it must be fetched again."""
        try:
            size = path.stat().st_size
            if size == 0 or (not fmp4 and size % 188):
                return 0
            with open(path, "rb") as f:
                first = f.read(1)
        except OSError:
            return 0
        return size if fmp4 or first == b"\x47" else 0

    @staticmethod
    def write_atomic(path: Path, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to ``path`` through a temp file and a rename (never a partial file)."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def close(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def remove(self) -> None:
        """Delete what this engine put in the part directory (and the directory when left empty)."""
        shutil.rmtree(self.seg_dir, ignore_errors=True)
        for name in ("manifest.json", ".lock"):
            (self.root / name).unlink(missing_ok=True)
        try:
            self.root.rmdir()
        except OSError:
            pass

    def __enter__(self) -> "PartDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
