"""dramatiq-dashboard at ``/dashboard``, mounted through a2wsgi on the gateway's own broker
(which declares both queues: the dashboard lists declared queues only)."""

from __future__ import annotations

import json
from typing import Any


class Dashboard:
    """An ASGI app built on first use, once the gateway's broker exists (it opens in the lifespan)."""

    def __init__(self, state: Any, prefix: str = "/dashboard"):
        self.state, self.prefix = state, prefix
        self._app: Any = None

    def _build(self) -> Any:
        try:
            from a2wsgi import WSGIMiddleware
            from dramatiq_dashboard import DashboardApp
        except ImportError:
            return None
        return WSGIMiddleware(DashboardApp(broker=self.state.broker, prefix=self.prefix))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build() or _missing
        await self._app(scope, receive, send)


async def _missing(scope: dict, receive: Any, send: Any) -> None:
    body = json.dumps({"code": 503, "data": None, "message": "dramatiq-dashboard is not installed: "
                       "pip install --no-deps dramatiq-dashboard==0.4.0 (make setup does it)"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
