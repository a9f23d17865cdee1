"""The worker's periodic jobs (the sweep, subscription ticks, the edition check) on one timer."""

from __future__ import annotations

import logging
import threading
from typing import Callable


def every(period_s: float, stop: threading.Event, run: Callable[[], object], *, name: str,
          log: logging.Logger) -> threading.Thread:
    """Call ``run()`` every ``period_s`` in a daemon thread called ``name`` until ``stop`` is set.
    A failing call is logged with its traceback and the next period tries again: one bad pass
    must not end the timer for the life of the worker."""
    def loop() -> None:
        while not stop.wait(period_s):
            try:
                run()
            except Exception:
                log.exception("%s failed", name)

    t = threading.Thread(target=loop, name=name, daemon=True)
    t.start()
    return t
