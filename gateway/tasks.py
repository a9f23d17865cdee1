"""The gateway's background tasks (the relay's reader, the index projection)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("nassav.gateway")


class Backoff:
    """The wait between attempts of a background loop that lost Redis (or met another passing
    error): ``first_s``, doubled after each failure up to ``max_s``, back to ``first_s`` after
    a success (:meth:`reset`).

    Parameters:
        log: where :meth:`wait` reports each failure, as a warning.
    """

    def __init__(self, log: logging.Logger, *, first_s: float = 0.5, max_s: float = 5.0):
        self.log, self.first_s, self.max_s = log, first_s, max_s
        self.next_s = first_s

    def reset(self) -> None:
        self.next_s = self.first_s

    async def wait(self, message: str, *args: object) -> None:
        """Log ``message % args``, sleep the current wait, and double the next one."""
        self.log.warning(message, *args)
        await asyncio.sleep(self.next_s)
        self.next_s = min(self.next_s * 2, self.max_s)


async def cancel_and_wait(task: asyncio.Task | None, *, recancel_after_s: float = 1.0) -> None:
    """Cancel ``task`` and wait until it has ended; whatever it raised on the way out is
    dropped (it is stopping, and its own loop already logged what went wrong).

    The cancel is sent again every ``recancel_after_s`` while the task runs: a cancel that
    lands inside a Redis call can come out of redis-py as a connection error, which the
    task's retry loop catches like any other, and one cancel then stopped nothing (a
    gateway's shutdown hung for good)."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=recancel_after_s)
        if not task.done():
            log.info("%s is still running after a cancel; cancelling again", task.get_name())
    try:
        task.result()
    except (asyncio.CancelledError, Exception):
        pass
