"""The event relay: one reader of the Redis stream per gateway process, many subscribers.

The relay reads the stream in batches and hands each batch to every subscriber, in the
relay's own task, without waiting: a subscriber either writes at once (a WebSocket on
uvicorn, see ``DirectWebSocket``) or queues the batch for its own consumer
(``QueueSubscriber``: SSE, other servers). Each encoding of a batch (JSON text, WebSocket
frames, SSE text) is made once and shared by every subscriber that wants it, because at a
thousand subscribers the per-subscriber encoding and the one-syscall-per-message of a plain
``send_json`` cost more than the two cores this runs on (see ``tools/bench_relay.py``).

A subscriber that falls too far behind is dropped and told the last id it was given, so the
client can reconnect with it and miss nothing that is still in the stream: the stream is the
buffer, not the process's memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.raw_frames import RawFrameWriter, ws_text_frame
from gateway.tasks import Backoff, cancel_and_wait
from pipeline.events import STREAM, Event, parse_entries

log = logging.getLogger("nassav.relay")

__all__ = ["Batch", "DirectWebSocket", "QueueSubscriber", "Relay", "Subscriber", "id_key", "ws_text_frame"]

TIMEOUT = object()  # what ``QueueSubscriber.get`` answers when nothing came in time


def id_key(stream_id: str) -> tuple[int, int]:
    """Stream ids compare as (milliseconds, sequence)."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def dumps(obj: Any) -> str:
    """JSON as Starlette's ``send_json`` writes it (compact, UTF-8 kept)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


class Batch:
    """Events read together; every encoding is made on first use and then shared."""

    __slots__ = ("events", "first_key", "last_key", "last_id", "_texts", "_frames", "_sse", "_only")

    def __init__(self, events: list[Event], texts: list[str] | None = None):
        self.events = events
        self.first_key = id_key(events[0].id) if events else (0, 0)
        self.last_key = id_key(events[-1].id) if events else (0, 0)
        self.last_id = events[-1].id if events else ""
        self._texts = texts
        self._frames: bytes | None = None
        self._sse: bytes | None = None
        self._only: dict[str, Batch] | None = None

    def texts(self) -> list[str]:
        """Each event as the WebSocket/SSE JSON text."""
        if self._texts is None:
            self._texts = [dumps(e.to_message()) for e in self.events]
        return self._texts

    def frames(self) -> bytes:
        """All events as consecutive WebSocket text frames, ready for one write."""
        if self._frames is None:
            self._frames = b"".join(ws_text_frame(t.encode()) for t in self.texts())
        return self._frames

    def sse(self) -> bytes:
        """All events as Server-Sent Events, each carrying its stream id."""
        if self._sse is None:
            self._sse = "".join(f"id: {e.id}\ndata: {t}\n\n"
                                for e, t in zip(self.events, self.texts())).encode()
        return self._sse

    def only(self, avid: str) -> "Batch":
        """The events of one AVID (cached, so subscribers with the same filter share it)."""
        if self._only is None:
            self._only = {}
        b = self._only.get(avid)
        if b is None:
            texts = self.texts()
            keep = [i for i, e in enumerate(self.events) if e.avid == avid]
            b = Batch([self.events[i] for i in keep], [texts[i] for i in keep])
            self._only[avid] = b
        return b

    def after(self, key: tuple[int, int]) -> "Batch":
        """The events strictly newer than ``key`` (self when all are)."""
        if self.first_key > key:
            return self
        texts = self.texts()
        keep = [i for i, e in enumerate(self.events) if id_key(e.id) > key]
        return Batch([self.events[i] for i in keep], [texts[i] for i in keep])


class Subscriber:
    """One consumer of the relay.

    ``deliver`` runs in the relay's task for every batch and must never wait. ``done`` is set
    when the subscription ends on the relay's side (too slow, relay stopped, peer gone);
    ``overflowed`` says whether it was for being too slow. ``last_id`` is the newest event
    this subscriber has been given (or was past, when filtered): where a client resumes.
    """

    def __init__(self, avid: str = ""):
        self.avid = avid
        self.last_id = ""
        self.sent_key = (0, 0)
        self.overflowed = False
        self.done = asyncio.Event()

    def deliver(self, batch: Batch) -> bool:
        """Take a batch; False means "drop me" (``done`` is then set)."""
        raise NotImplementedError

    def end(self, *, overflowed: bool = False) -> None:
        self.overflowed = self.overflowed or overflowed
        self.done.set()

    def take(self, batch: Batch) -> Batch | None:
        """What of ``batch`` this subscriber still needs (newer than what it has, of its
        AVID), noting it as given; None when nothing."""
        if batch.last_key <= self.sent_key:
            return None
        batch = batch.after(self.sent_key)
        self.sent_key, self.last_id = batch.last_key, batch.last_id
        if self.avid:
            batch = batch.only(self.avid)
        return batch if batch.events else None


class QueueSubscriber(Subscriber):
    """Batches wait in memory for a consumer task (SSE; WebSockets not on uvicorn).

    Parameters:
        avid: only events of this AVID ("" for all).
        max_pending_events: more than this many undelivered events ends the subscription
            as overflowed.
    """

    def __init__(self, avid: str = "", *, max_pending_events: int = 5000):
        super().__init__(avid)
        self.max_pending_events = max_pending_events
        self._batches: deque[Batch] = deque()
        self._pending = 0
        self._wake = asyncio.Event()

    def deliver(self, batch: Batch) -> bool:
        if self.done.is_set():
            return False
        self._batches.append(batch)
        self._pending += len(batch.events)
        self._wake.set()
        if self._pending > self.max_pending_events:
            self.end(overflowed=True)
            return False
        return True

    def end(self, *, overflowed: bool = False) -> None:
        super().end(overflowed=overflowed)
        self._wake.set()

    def pending(self) -> bool:
        return bool(self._batches)

    async def get(self, timeout_s: float | None = None) -> Batch | None | object:
        """The next batch with something for this subscriber; ``None`` once ended and
        drained; ``TIMEOUT`` when nothing came within ``timeout_s``."""
        while True:
            while self._batches:
                b = self._batches.popleft()
                self._pending -= len(b.events)
                fresh = self.take(b)
                if fresh is not None:
                    return fresh
            if self.done.is_set():
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout_s)
            except asyncio.TimeoutError:
                return TIMEOUT


class DirectWebSocket(Subscriber):
    """A WebSocket served by uvicorn, written to from the relay's task: one write per batch.

    ASGI has no way to send several messages in one write, and uvicorn makes one ``send``
    syscall per message; here the batch's frames (made once for all subscribers when the
    connection negotiated no extension, otherwise framed by the connection's own protocol
    object so compression stays consistent) go out in one write, through
    ``gateway/raw_frames.py`` (the one place that knows uvicorn's insides).

    Until ``go_live`` the subscriber holds batches, so a backlog replay can go first.
    Use ``DirectWebSocket.attach(websocket)``, which answers None when the fast path does
    not apply.

    Parameters:
        max_buffer_bytes: a peer whose unsent output exceeds this is dropped as too slow.
    """

    def __init__(self, writer: RawFrameWriter, avid: str = "", *, max_buffer_bytes: int = 4 << 20,
                 max_held_events: int = 20_000):
        super().__init__(avid)
        self.writer = writer
        self.max_buffer_bytes = max_buffer_bytes
        self.max_held_events = max_held_events
        self._held: list[Batch] | None = []
        self._held_events = 0

    @classmethod
    def attach(cls, websocket: Any, avid: str = "", **kw: Any) -> "DirectWebSocket | None":
        writer = RawFrameWriter.attach(websocket)
        return cls(writer, avid, **kw) if writer is not None else None

    def deliver(self, batch: Batch) -> bool:
        if self.done.is_set():
            return False
        if self._held is not None:
            self._held.append(batch)
            self._held_events += len(batch.events)
            if self._held_events > self.max_held_events:
                self.end(overflowed=True)
                return False
            return True
        return self._write(batch)

    def replay(self, batch: Batch) -> bool:
        """Write backlog events (before ``go_live``)."""
        return self._write(batch)

    def go_live(self) -> bool:
        """Write what was held during the replay, then write each batch as it comes."""
        held, self._held = self._held or [], None
        return all(self._write(b) for b in held)

    def _write(self, batch: Batch) -> bool:
        if self.done.is_set():
            return False
        if self.writer.closed():
            self.end()
            return False
        if self.writer.buffered_bytes() > self.max_buffer_bytes:
            self.end(overflowed=True)
            return False
        fresh = self.take(batch)
        if fresh is None:
            return True
        if self.writer.plain:
            self.writer.write_frames(fresh.frames())
            return True
        if not self.writer.send_texts(fresh.texts()):
            self.end()
            return False
        return True


class Relay:
    """Reads the stream from its current end and fans each batch out to the subscribers.

    Parameters:
        client: an asyncio Redis client (the relay blocks one pooled connection in XREAD). It
            decodes replies, as every product client does: reading events that way costs no
            more than bytes plus a conversion did (``tools/bench_redis_decode.py``), so this
            hot path needs no bytes client of its own.
        stream: the stream key.
        pause_per_subscriber_s, max_pause_s: after a non-empty read the relay waits
            ``min(max_pause_s, pause_per_subscriber_s × subscribers)`` before the next one, so
            a busy stream is read, and written to each subscriber, in batches. Each batch
            costs one write per subscriber, so the pause grows with their number: a page or
            two get every event at once, a thousand subscribers get about 50 writes a second
            each (20 ms) instead of one per event. An event on a quiet stream goes out at once.
        read_count: the most entries one read takes.
    """

    def __init__(self, client: aioredis.Redis, *, stream: str = STREAM, pause_per_subscriber_s: float = 40e-6,
                 max_pause_s: float = 0.02, read_count: int = 1000):
        self.client, self.stream = client, stream
        self.pause_per_subscriber_s, self.max_pause_s = pause_per_subscriber_s, max_pause_s
        self.read_count = read_count
        self.subs: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self.last_id = "$"
        # Called with each event, in the relay's task (e.g. a projection); must not block.
        self.listeners: list[Callable[[Event], Any]] = []

    async def start(self) -> None:
        # Start from the current end: subscribers catch up from their own last id.
        try:
            info = await self.client.xinfo_stream(self.stream)
            self.last_id = info.get("last-generated-id") or "0-0"
        except RedisError:
            self.last_id = "0-0"
        self._task = asyncio.create_task(self._run(), name="event-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        for s in list(self.subs):
            self.subs.discard(s)
            s.end()

    def subscribe(self, sub: Subscriber | None = None) -> Subscriber:
        """Register ``sub`` (a new ``QueueSubscriber`` for all events when omitted)."""
        sub = sub if sub is not None else QueueSubscriber()
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subs.discard(sub)

    async def backlog(self, after_id: str, count: int = 1000) -> list[Event]:
        """Up to ``count`` events strictly after ``after_id`` that are still in the stream."""
        rows = await self.client.xrange(self.stream, min=f"({after_id}", count=count)
        return parse_entries(rows)

    async def backlog_batches(self, after_id: str, *, count: int = 1000,
                              limit: int = 100_000) -> list[Batch]:
        """Everything after ``after_id`` in batches of ``count`` (at most ``limit`` events)."""
        out: list[Batch] = []
        seen = 0
        while seen < limit:
            events = await self.backlog(after_id, count)
            if not events:
                break
            out.append(Batch(events))
            seen += len(events)
            after_id = events[-1].id
            if len(events) < count:
                break
        return out

    async def _run(self) -> None:
        retry = Backoff(log)
        while True:
            idle = not self.subs and not self.listeners
            try:
                res = await self.client.xread({self.stream: self.last_id}, block=1000,
                                              count=1 if idle else self.read_count)
                if res and idle and await self._skip_to_end():
                    await asyncio.sleep(self.max_pause_s)
                    continue
                retry.reset()
            except (RedisError, OSError) as e:
                await retry.wait("relay: redis unavailable (%s); retrying", e)
                continue
            events = [e for _, rows in res or [] for e in parse_entries(rows)]
            if not events:
                continue
            self.last_id = events[-1].id
            self._fan_out(Batch(events))
            pause = min(self.max_pause_s, self.pause_per_subscriber_s * len(self.subs))
            if pause > 0 and len(events) < self.read_count:
                await asyncio.sleep(pause)

    async def _skip_to_end(self) -> bool:
        """With nobody to hand events to, move to the stream's last entry without reading the
        ones before it; False (nothing skipped) when a subscriber came meanwhile, so it misses
        nothing. Every gateway process runs a relay: reading and parsing every event cost each
        of them ~0.15 ms of CPU per accepted request (``gateway.processes``)."""
        if self.subs or self.listeners:
            return False
        top = await self.client.xrevrange(self.stream, count=1)
        if self.subs or self.listeners or not top:
            return False
        self.last_id = top[0][0]
        return True

    def _fan_out(self, batch: Batch) -> None:
        for fn in self.listeners:
            for event in batch.events:
                try:
                    fn(event)
                except Exception:
                    log.exception("relay listener failed")
        for s in list(self.subs):
            try:
                keep = s.deliver(batch)
            except Exception:
                log.exception("relay subscriber failed")
                keep = False
                s.end()
            if not keep:
                self.subs.discard(s)
