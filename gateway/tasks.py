"""The gateway's background tasks (the relay's reader, the index projection)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("nassav.gateway")


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
