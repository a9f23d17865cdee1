"""SIGINT/SIGTERM turned into a ``threading.Event`` without the handler taking a lock.

A Python signal handler runs in the main thread between two bytecodes, also while that thread
holds the Event's own lock inside ``Event.wait()`` (it re-takes it when the wait ends). A
handler that calls ``Event.set()`` there waits for a lock its own thread holds: forever. Two
signals in quick succession hit that window: the first ends the wait, the second lands while
the lock is re-taken. That is what Ctrl-C under ``nassav up`` sends a worker (the terminal's
SIGINT to the whole group, then the supervisor's SIGTERM), and a worker hung until it was
killed 40 s later. So the handler here only records the signal (``list.append`` takes no
lock) and a small thread sets the Event.
"""

from __future__ import annotations

import signal
import threading
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(stop: threading.Event, signals: tuple[int, ...] = STOP_SIGNALS,
                    poll_s: float = 0.1) -> list[int]:
    """Set ``stop`` within ``poll_s`` of the first of ``signals``; call from the main thread.

    Returns the list the signals are recorded in (numbers, in order of arrival), for callers
    that act on which one came first.
    """
    got: list[int] = []
    for sig in signals:
        signal.signal(sig, lambda signum, _frame: got.append(signum))

    def relay() -> None:
        while not got and not stop.is_set():  # is_set takes no lock either
            time.sleep(poll_s)
        stop.set()

    threading.Thread(target=relay, name="stop-signals", daemon=True).start()
    return got
