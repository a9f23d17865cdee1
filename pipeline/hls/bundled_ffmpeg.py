"""Where imageio-ffmpeg keeps its ffmpeg, found without importing the package or running the binary.

``imageio_ffmpeg.get_ffmpeg_exe()`` imports the package (~20-40 ms) and runs ``ffmpeg -version``
once to check the binary (~25-90 ms for the static 80 MB build). The HLS engine starts its
remuxer right after the playlist: ffmpeg is the critical path of a fast download, so that
tenth of a second was on it. The remux itself checks the binary: one that cannot run fails
the download with "cannot start ffmpeg".

What it relies on (imageio-ffmpeg 0.4-0.8; ``tests/test_bundled_ffmpeg.py`` compares the answer
with ``get_ffmpeg_exe()`` and fails when they differ): the ``IMAGEIO_FFMPEG_EXE`` environment
variable wins; otherwise the one binary of the wheel is ``imageio_ffmpeg/binaries/ffmpeg-*``.
Anything else (no package, several binaries, a conda or system ffmpeg) answers None and the
caller asks imageio-ffmpeg the slow way.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def bundled_ffmpeg() -> str | None:
    """The ffmpeg imageio-ffmpeg would answer, when it can be told cheaply; else None."""
    override = os.environ.get("IMAGEIO_FFMPEG_EXE")  # read per call: the user may set it late
    if override:
        return override
    try:
        spec = importlib.util.find_spec("imageio_ffmpeg")  # finds the package without running it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    found = [p for loc in spec.submodule_search_locations for p in (Path(loc) / "binaries").glob("ffmpeg-*")
             if p.is_file() and os.access(p, os.X_OK)]
    return str(found[0]) if len(found) == 1 else None


__all__ = ["bundled_ffmpeg"]
