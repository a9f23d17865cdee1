"""The gateway's background tasks (the relay's reader, the index projection)."""

from __future__ import annotations

import asyncio


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
