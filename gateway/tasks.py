"""The gateway's background tasks (the relay's reader, the index projection)."""

from __future__ import annotations

import asyncio
import logging


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


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait until it has ended; whatever it raised on the way out is
    dropped (it is stopping, and its own loop already logged what went wrong)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
