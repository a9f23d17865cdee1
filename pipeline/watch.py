"""A watcher thread that turns outside conditions into one cancel event."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

__all__ = ["cancel_when"]


@contextlib.contextmanager
def cancel_when(cancel: threading.Event, *, now: Callable[[], bool], poll: Callable[[], bool],
                tick_s: float = 0.25, poll_interval_s: float = 1.0,
                name: str = "cancel-watch") -> Iterator[threading.Event]:
    """Set ``cancel`` as soon as ``now()`` (cheap: checked every ``tick_s``) or ``poll()``
    (a network call: every ``poll_interval_s``) says so. Leaving the block sets ``cancel``,
    which also ends the thread, and waits for it.

    An exception from ``poll()`` is ignored (a Redis blip must not cancel a download: the
    download mutex's renewal decides whether it goes on)."""
    def watch() -> None:
        last_poll = 0.0
        while not cancel.wait(tick_s):
            if now():
                cancel.set()
            elif time.monotonic() - last_poll >= poll_interval_s:
                last_poll = time.monotonic()
                try:
                    if poll():
                        cancel.set()
                except Exception:
                    pass

    thread = threading.Thread(target=watch, daemon=True, name=name)
    thread.start()
    try:
        yield cancel
    finally:
        cancel.set()
        thread.join()
