"""The old client's task calls and its WebSocket (``/nassav/ws/tasks/``).

For now the socket is nassav's own task socket unchanged; the old message order lands here.
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from gateway.ws import serve_tasks


def routes() -> list:
    """Task routes relative to ``/nassav/api`` (they win over ``library.routes()``)."""
    return []


async def ws_tasks(websocket: WebSocket) -> None:
    """The old client's task WebSocket."""
    st = websocket.app.state.nassav
    await serve_tasks(websocket, st.relay, st.queue_status, st.ws_limit)
