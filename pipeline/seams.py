"""What the seams into other libraries' private insides share.

Each seam (``gateway/raw_frames.py``, ``pipeline/hls/curl_socket.py``) checks the private
shape it relies on with its own ``check_shape`` and, when a newer library differs, falls back
to the slower public way and says so once.
"""

from __future__ import annotations

import logging
import threading

_reported: set[str] = set()
_lock = threading.Lock()


def report_once(log: logging.Logger, error: Exception, fallback: str) -> None:
    """Log ``error`` and what happens instead, the first time this message is seen."""
    text = f"{error}; {fallback}"
    with _lock:
        if text in _reported:
            return
        _reported.add(text)
    log.error("%s", text)
