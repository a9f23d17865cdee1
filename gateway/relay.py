"""The event relay: one reader of the Redis stream per gateway process, many subscribers.

A subscriber gets a bounded queue. One that falls too far behind is dropped with a note of
the last id it received, so the client can reconnect with it and miss nothing that is still
in the stream (the stream is the buffer, not the process's memory).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pipeline.events import STREAM, Event, parse_entries

log = logging.getLogger("nassav.relay")


def id_key(stream_id: str) -> tuple[int, int]:
    """Stream ids compare as (milliseconds, sequence)."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


class Subscription:
    def __init__(self, maxsize: int):
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False


class Relay:
    def __init__(self, client: aioredis.Redis, *, stream: str = STREAM, queue_size: int = 5000):
        self.client, self.stream, self.queue_size = client, stream, queue_size
        self.subs: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self.last_id = "$"
        self.listeners: list[Callable[[Event], Any]] = []

    async def start(self) -> None:
        # Start from the current end: subscribers catch up from their own last id.
        try:
            info = await self.client.xinfo_stream(self.stream)
            last = info.get("last-generated-id") or info.get(b"last-generated-id")
            self.last_id = last.decode() if isinstance(last, bytes) else (last or "0-0")
        except RedisError:
            self.last_id = "0-0"
        self._task = asyncio.create_task(self._run(), name="event-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for s in list(self.subs):
            self._close(s)

    def subscribe(self) -> Subscription:
        s = Subscription(self.queue_size)
        self.subs.add(s)
        return s

    def unsubscribe(self, s: Subscription) -> None:
        self.subs.discard(s)

    async def backlog(self, after_id: str, count: int = 10_000) -> list[Event]:
        rows = await self.client.xrange(self.stream, min=f"({after_id}", count=count)
        return parse_entries(rows)

    def _close(self, s: Subscription) -> None:
        self.subs.discard(s)
        try:
            s.queue.put_nowait(None)
        except asyncio.QueueFull:
            pass

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                res = await self.client.xread({self.stream: self.last_id}, block=1000, count=500)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                log.warning("relay: redis unavailable (%s); retrying", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
                continue
            for _, rows in res or []:
                for event in parse_entries(rows):
                    self.last_id = event.id
                    self._fan_out(event)

    def _fan_out(self, event: Event) -> None:
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:
                log.exception("relay listener failed")
        for s in list(self.subs):
            try:
                s.queue.put_nowait(event)
            except asyncio.QueueFull:
                s.overflowed = True
                self.subs.discard(s)
