"""The old client's task WebSocket (``/nassav/ws/tasks/``): the old messages in the old order.

On connect a ``queue_status``; then, from nassav's event stream, only what the old server
sent (see ``messages.py``): ``task_started``, ``progress_update``, ``task_completed``,
``task_failed`` of download jobs, each task event followed by a fresh ``queue_status``, and a
``queue_status`` when downloads are queued. The client may send
``{"action": "get_queue_status"}`` (and ``ping``), as on nassav's own socket.

This socket is one browser tab, so it may be slower than nassav's own: it takes batches from
the relay through a queue (never the relay's direct write path), and looks up job kinds and
the queue in its own task. A tab too slow to keep up is dropped (close 1013) and, as the old
client does after any close, reconnects and starts again from a fresh ``queue_status``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from starlette.websockets import WebSocket

from gateway import ws
from gateway.compat.messages import QUEUE_STATUS, TASK_EVENTS, kind_in, old_queue, translate
from gateway.relay import Batch, QueueSubscriber, Relay
from gateway.ws import ClientLimit, limited, sender, session, subprotocol
from pipeline import events as ev
from pipeline.events import Event
from pipeline.jobs import AsyncJobs, job_key

QueueStatus = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class JobKinds:
    """Job id → kind, learnt from the events that carry it and looked up in Redis for the
    ones that do not (a task's end), remembered for the life of one socket.

    Parameters:
        redis: the gateway's client (job records are ``nassav:job:{id}`` hashes).
        max_entries: the memory is dropped when it grows past this (ids are looked up again).
    """

    def __init__(self, redis: aioredis.Redis, *, max_entries: int = 4096):
        self.redis, self.max_entries = redis, max_entries
        self.known: dict[str, str] = {}

    async def of(self, events: Iterable[Event]) -> dict[str, str]:
        """The kinds of the jobs of ``events`` whose old message depends on it."""
        events = list(events)
        if len(self.known) > self.max_entries:
            self.known.clear()
        for e in events:
            kind = kind_in(e)
            if kind and e.job_id:
                self.known[e.job_id] = kind
        missing = sorted({e.job_id for e in events if e.job_id and e.job_id not in self.known
                          and e.type in (ev.TASK_COMPLETED, ev.TASK_FAILED)})
        if missing:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in missing:
                    pipe.hget(job_key(job_id), "kind")
                found = await pipe.execute()
            for job_id, kind in zip(missing, found):
                self.known[job_id] = kind or ""
        return self.known


async def old_messages(events: list[Event], kinds: JobKinds, queue_status: QueueStatus) -> list[dict[str, Any]]:
    """The old client's messages for a batch of events, in order.

    Each task event carries the queue (``active_tasks``… beside its own fields: the client
    rebuilds its list from a task event's data, and would show an empty list until the next
    ``queue_status``) and is followed by a ``queue_status``. Downloads queued in the batch get
    one ``queue_status`` at its end (a batch submit of 500 is one message, not 500), unless a
    task event's already followed them. The queue is read once per batch, after the batch
    arrived, so it is at least as new as every event in it."""
    known = await kinds.of(events)
    out: list[dict[str, Any]] = []
    status: dict[str, Any] | None = None
    owed = False  # a queued download not yet followed by a queue_status
    for e in events:
        message, queue_changed = translate(e, known.get(e.job_id, ""))
        if queue_changed and status is None:
            status = await queue_status()
        if message is None:
            owed = owed or queue_changed
            continue
        if message["type"] in TASK_EVENTS:
            message["data"].update(status or {})
            out += [message, {"type": QUEUE_STATUS, "data": status}]
            owed = False
        else:
            out.append(message)
    if owed:
        out.append({"type": QUEUE_STATUS, "data": status})
    return out


def queue_status_of(jobs: AsyncJobs) -> QueueStatus:
    """The old ``queue_status`` data, read from the live job records."""
    async def queue_status() -> dict[str, Any]:
        return old_queue(await jobs.active())
    return queue_status


async def serve_old_tasks(websocket: WebSocket, relay: Relay, jobs: AsyncJobs, redis: aioredis.Redis,
                          limit: ClientLimit | None = None) -> None:
    """Run one old-client task socket until the client leaves (see the module docstring)."""
    await limited(websocket, limit, lambda: _serve(websocket, relay, queue_status_of(jobs), JobKinds(redis)))


async def _serve(websocket: WebSocket, relay: Relay, queue_status: QueueStatus, kinds: JobKinds) -> None:
    await websocket.accept(subprotocol=subprotocol(websocket.scope.get("subprotocols") or []))
    send, _ = sender(websocket)
    sub = QueueSubscriber(max_pending_events=ws.MAX_PENDING_EVENTS)

    async def begin() -> Awaitable[None]:
        await send({"type": QUEUE_STATUS, "data": await queue_status()})
        return _feed(sub, kinds, queue_status, send)

    await session(websocket, relay, sub, send, begin, queue_status)


async def _feed(sub: QueueSubscriber, kinds: JobKinds, queue_status: QueueStatus, send: Send) -> None:
    while True:
        batch = await sub.get()
        if batch is None:
            return
        events = list(batch.events)  # type: ignore[union-attr]
        # What came while the last messages went out is taken together: a slow tab gets
        # fewer, fresher queue_status messages instead of falling further behind.
        while sub.pending():
            more = await sub.get(0)
            if isinstance(more, Batch):
                events += more.events
        for message in await old_messages(events, kinds, queue_status):
            await send(message)
