"""The task WebSocket (``/ws/tasks/``): the old NASSAV client's messages plus stage events.

On connect: ``queue_status``; then, with ``?last_id=``, every event after that id still in the
stream; then live events. ``?avid=`` keeps one title's events. The client may send
``{"action": "get_queue_status"}`` or ``{"action": "ping"}``; anything else gets an ``error``
message and the connection stays open. The server sends ``{"type": "ping"}`` every
``PING_INTERVAL_S`` so proxies and clients can tell a quiet connection from a dead one.
A subscriber too slow to keep up gets an ``error`` naming the ``last_id`` to reconnect with,
then a close with code 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any, Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gateway import json_input
from gateway.json_input import JsonRefused, TooDeep
from gateway.relay import Batch, DirectWebSocket, QueueSubscriber, Relay, Subscriber, dumps
from pipeline.avid import parse
from pipeline.errors import InvalidAvid

PING_INTERVAL_S = 20.0
# A subscriber is dropped (and told where to resume) when this much output is waiting for it:
# bytes unsent on a uvicorn connection, or events not yet sent on any other server.
MAX_BUFFER_BYTES = 4 << 20
MAX_PENDING_EVENTS = 5000
_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")


class ClientLimit:
    """Live-event connections per client address, so one client cannot flood the relay."""

    def __init__(self, max_per_client: int):
        self.max_per_client = max_per_client
        self.counts: dict[str, int] = {}

    def acquire(self, client: str) -> bool:
        n = self.counts.get(client, 0)
        if self.max_per_client and n >= self.max_per_client:
            return False
        self.counts[client] = n + 1
        return True

    def release(self, client: str) -> None:
        n = self.counts.get(client, 0) - 1
        if n > 0:
            self.counts[client] = n
        else:
            self.counts.pop(client, None)


def avid_filter(text: str | None) -> str:
    """The normalised AVID of an ``?avid=`` filter ("" for none); raises ``InvalidAvid``."""
    text = (text or "").strip()
    return parse(text).code if text else ""


def stream_id(text: str | None) -> str:
    """A resume id as given (``1700000000000-0`` or ``1700000000000``), or "" when absent
    or malformed."""
    text = (text or "").strip()
    return text if _STREAM_ID.match(text) else ""


def subprotocol(offered: list[str]) -> str | None:
    """The subprotocol to answer a client's offer with (a browser's bearer token), or None."""
    # A browser passes its token as the subprotocols ["bearer", T] (see gateway/auth.py) and
    # drops the connection unless the server picks one it offered. Auth picks it when a token
    # is configured; this keeps a page with a remembered token working when none is.
    for p in offered:
        if p == "bearer" or p.startswith("bearer."):
            return p
    return None


async def serve_tasks(websocket: WebSocket, relay: Relay,
                      queue_status: Callable[[], Awaitable[dict[str, Any]]],
                      limit: ClientLimit | None = None) -> None:
    """Run one task WebSocket until the client leaves (see the module docstring)."""
    await limited(websocket, limit, lambda: _serve(websocket, relay, queue_status))


async def limited(websocket: WebSocket, limit: ClientLimit | None,
                  serve: Callable[[], Awaitable[None]]) -> None:
    """Run ``serve()`` unless the client already holds its share of live connections (then
    accept, send an ``error`` naming the limit and close with 1008)."""
    client = websocket.client.host if websocket.client else "?"
    if limit is not None and not limit.acquire(client):
        await websocket.accept(subprotocol=subprotocol(websocket.scope.get("subprotocols") or []))
        with contextlib.suppress(Exception):
            await websocket.send_text(dumps({"type": "error", "message":
                                             f"too many live connections from {client} (limit "
                                             f"{limit.max_per_client}); close some and retry"}))
            await websocket.close(1008)
        return
    try:
        await serve()
    finally:
        if limit is not None:
            limit.release(client)


def sender(websocket: WebSocket) -> tuple[Callable[[dict[str, Any]], Awaitable[None]], asyncio.Lock]:
    """A ``send(obj)`` for the socket, and the lock it takes: the feed, the pinger and the
    request loop all send, and frames must not interleave."""
    lock = asyncio.Lock()

    async def send(obj: dict[str, Any]) -> None:
        async with lock:
            await websocket.send_text(dumps(obj))
    return send, lock


async def _serve(websocket: WebSocket, relay: Relay,
                 queue_status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    await websocket.accept(subprotocol=subprotocol(websocket.scope.get("subprotocols") or []))
    send, lock = sender(websocket)

    async def send_batch(b: Batch) -> None:
        async with lock:
            for t in b.texts():
                await websocket.send_text(t)

    try:
        only = avid_filter(websocket.query_params.get("avid"))
    except InvalidAvid as e:
        await send({"type": "error", "message": f"avid filter: {e}"})
        await websocket.close(1008)
        return
    raw_last = websocket.query_params.get("last_id") or ""
    last_id = stream_id(raw_last)

    direct = DirectWebSocket.attach(websocket, only, max_buffer_bytes=MAX_BUFFER_BYTES)
    sub: Subscriber = direct if direct is not None else \
        QueueSubscriber(only, max_pending_events=MAX_PENDING_EVENTS)

    async def begin() -> Awaitable[Any]:
        await send({"type": "queue_status", "data": await queue_status()})
        if raw_last and not last_id:
            await send({"type": "error", "message": f"last_id {raw_last[:40]!r} is not a stream id "
                                                    "(like 1700000000000-0); sending live events only"})
        for b in await relay.backlog_batches(last_id) if last_id else []:
            if direct is not None:
                direct.replay(b)
            else:
                fresh = sub.take(b)
                if fresh is not None:
                    await send_batch(fresh)
        if direct is not None:
            direct.go_live()
            return sub.done.wait()
        return _pump(sub, send_batch)

    await session(websocket, relay, sub, send, begin, queue_status)


async def session(websocket: WebSocket, relay: Relay, sub: Subscriber,
                  send: Callable[[dict[str, Any]], Awaitable[None]],
                  begin: Callable[[], Awaitable[Awaitable[Any]]],
                  queue_status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Serve an accepted task socket with ``sub`` subscribed to ``relay``: ``begin()`` sends
    the greeting and returns the feed (what ends when the subscription does); then the feed,
    the pinger and the client's requests run until one ends. Unsubscribes and closes on the
    way out; a subscriber dropped as too slow gets an ``error`` and a close with 1013."""
    # Subscribe before ``begin`` reads anything, so no event falls in between.
    relay.subscribe(sub)
    tasks: list[asyncio.Task] = []
    try:
        tasks.append(asyncio.create_task(await begin()))
        tasks.append(asyncio.create_task(pinger(send)))
        tasks.append(asyncio.create_task(client_requests(websocket, send, queue_status)))
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[-1] in finished:
            tasks[-1].result()  # the client left (or broke the protocol): nothing more to say
        elif tasks[0] in finished:
            with contextlib.suppress(Exception):  # the peer may be gone already
                if sub.overflowed:
                    await send({"type": "error", "message": "subscriber too slow; reconnect with "
                                f"last_id={sub.last_id}", "last_id": sub.last_id})
                    await websocket.close(1013)
                else:
                    await websocket.close(1012)  # the relay stopped: the server is going away
        else:
            tasks[1].result()
    except WebSocketDisconnect:
        pass
    finally:
        relay.unsubscribe(sub)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


async def _pump(sub: QueueSubscriber, send_batch: Callable[[Batch], Awaitable[None]]) -> None:
    while True:
        b = await sub.get()
        if b is None:
            return
        await send_batch(b)  # type: ignore[arg-type]


async def pinger(send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Send ``{"type": "ping"}`` every ``PING_INTERVAL_S`` until cancelled."""
    while True:
        await asyncio.sleep(PING_INTERVAL_S)
        await send({"type": "ping", "data": {"ts": time.time()}})


async def client_requests(websocket: WebSocket, send: Callable[[dict[str, Any]], Awaitable[None]],
                          queue_status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Answer the client's requests (``get_queue_status``, ``ping``) until it leaves; raises
    ``WebSocketDisconnect`` then."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", "replace")
        try:
            msg = json_input.loads(text)
        except TooDeep as e:
            await send({"type": "error", "message": f"invalid JSON: the message is {e}; send "
                                                    '{"action": "get_queue_status"} or {"action": "ping"}'})
            continue
        except JsonRefused:
            await send({"type": "error", "message": "invalid JSON"})
            continue
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "get_queue_status":
            await send({"type": "queue_status", "data": await queue_status()})
        elif action == "ping":
            await send({"type": "pong", "data": {"ts": time.time()}})
        else:
            await send({"type": "error", "message": "unknown action; accepted: get_queue_status, ping"})
