"""``GET /api/events``: the task WebSocket's stream as Server-Sent Events.

Each event is one SSE message whose ``id`` is the stream id and whose ``data`` is the same
JSON a WebSocket client gets (``{"type", "id", "data"}``); there is no ``event:`` field, so
``EventSource.onmessage`` sees everything. The first message is the ``queue_status``
(without an id, so it does not move the resume point). A browser reconnecting sends
``Last-Event-ID`` by itself and gets what it missed; ``?last_id=`` does the same for other
clients, and ``?avid=`` keeps one title's events. A comment line every ``KEEPALIVE_S`` keeps
proxies from closing a quiet stream. A client too slow to keep up gets an ``error`` message
and the end of the stream; reconnecting resumes where it was.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.api.common import doc
from gateway.relay import TIMEOUT, QueueSubscriber, Relay, dumps
from gateway.ws import avid_filter, stream_id
from pipeline.errors import InvalidAvid

KEEPALIVE_S = 15.0
RETRY_MS = 3000  # how long a browser waits before reconnecting


def sse_message(obj: dict[str, Any], event_id: str = "") -> str:
    """One SSE message carrying ``obj`` as JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {dumps(obj)}\n\n"


@doc(query={"last_id": "resume after this stream id (the Last-Event-ID header does the same)",
            "avid": "only this AVID's events"},
     responses={200: "text/event-stream: queue_status first, then one message per event",
                400: "the avid filter is not an AVID"})
async def events(request: Request) -> Response:
    """The live event stream as Server-Sent Events.

    Each message's data is the WebSocket's JSON (``{"type", "id", "data"}``) and its id the
    stream id, so a reconnecting EventSource resumes by itself."""
    st = request.app.state.nassav
    try:
        only = avid_filter(request.query_params.get("avid"))
    except InvalidAvid as e:
        return JSONResponse({"code": 400, "message": f"avid filter: {e}", "data": None}, status_code=400)
    last_id = stream_id(request.headers.get("last-event-id") or request.query_params.get("last_id"))
    client = request.client.host if request.client else "?"
    limit = getattr(st, "ws_limit", None)
    if limit is not None and not limit.acquire(client):
        return JSONResponse({"code": 429, "message": f"too many live connections from {client} (limit "
                             f"{limit.max_per_client}); close some and retry", "data": None},
                            status_code=429)
    relay: Relay = st.relay
    sub = QueueSubscriber(only)
    relay.subscribe(sub)  # before the backlog read, so nothing falls between the two
    try:
        status = await st.queue_status()
    except BaseException:
        relay.unsubscribe(sub)
        if limit is not None:
            limit.release(client)
        raise
    return StreamingResponse(_stream(relay, sub, status, last_id,
                                     (lambda: limit.release(client)) if limit is not None else None),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(relay: Relay, sub: QueueSubscriber, status: dict[str, Any],
                  last_id: str, release=None) -> AsyncIterator[bytes]:
    try:
        yield (f"retry: {RETRY_MS}\n" + sse_message({"type": "queue_status", "data": status})).encode()
        for b in await relay.backlog_batches(last_id) if last_id else []:
            fresh = sub.take(b)
            if fresh is not None:
                yield fresh.sse()
        while True:
            b = await sub.get(KEEPALIVE_S)
            if b is TIMEOUT:
                yield b": keep-alive\n\n"
            elif b is None:
                break
            else:
                yield b.sse()  # type: ignore[union-attr]
        if sub.overflowed:
            yield sse_message({"type": "error", "message": "subscriber too slow; reconnect with "
                               f"last_id={sub.last_id}", "last_id": sub.last_id}).encode()
    finally:
        relay.unsubscribe(sub)
        if release is not None:
            release()


def extra_routes() -> list[Route]:
    """The SSE route under both prefixes the API is served at (mounted by ``create_app``)."""
    return [Route("/api/events", events, methods=["GET"]),
            Route("/nassav/api/events", events, methods=["GET"])]
