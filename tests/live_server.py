"""A real gateway for the live tests: ``create_app`` under uvicorn on a free port, configured
by ``gateway.serve.uvicorn_config`` exactly as ``nassav serve`` runs it, in a thread of the
test process (so a test can read the relay's state and set module knobs), on the real Redis. Plus a small Server-Sent Events reader on the standard library."""

from __future__ import annotations

import http.client
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from gateway.app import create_app
from gateway.serve import WS_PROTOCOL, uvicorn_config
from pipeline.config import load
from tests.conftest import free_port, wait_for


class LiveGateway:
    """A running gateway: ``base`` (http://…), ``ws`` (ws://…), ``st`` (the app's State)."""

    def __init__(self, app: Any, port: int, server: uvicorn.Server, thread: threading.Thread):
        self.app, self.port, self.server, self.thread = app, port, server, thread
        self.base = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.st = app.state.nassav


@contextmanager
def live_gateway(data_dir: Path, redis_url: str, *, ws: str = WS_PROTOCOL,
                 **config: Any) -> Iterator[LiveGateway]:
    """Serve ``create_app`` as ``nassav serve`` does until the block ends; ``config`` are
    config keys (``gateway={"header_timeout_s": 2}``…), ``ws`` picks uvicorn's WebSocket protocol."""
    port = free_port()
    cfg = load(None, {}, data_dir=str(data_dir), redis_url=redis_url, host="127.0.0.1", port=port, **config)
    app = create_app(cfg, redis_url)
    # The server's settings come from the one function `nassav serve` uses.
    server = uvicorn.Server(uvicorn_config(app, cfg, ws=ws, graceful_shutdown_s=2, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 20, 0.02, "the gateway to start")
        assert thread.is_alive(), "the gateway thread died while starting"
        yield LiveGateway(app, port, server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


class SSE:
    """Reads a ``text/event-stream`` response message by message (blocking, with a timeout)."""

    def __init__(self, base: str, path: str, headers: dict[str, str] | None = None, timeout_s: float = 10,
                 conn: http.client.HTTPConnection | None = None):
        host, _, port = base.removeprefix("http://").partition(":")
        # ``conn``: an open keep-alive connection, so the stream comes from the same server
        # process as its earlier answers (several gateway processes share a port).
        self.conn = conn or http.client.HTTPConnection(host, int(port), timeout=timeout_s)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())

    def next(self) -> dict[str, Any]:
        """The next message as ``{"id", "data" (parsed), "comments", "retry"}``."""
        msg: dict[str, Any] = {"id": None, "data": None, "comments": [], "retry": None}
        data: list[str] = []
        while True:
            raw = self.response.fp.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data or msg["comments"] or msg["retry"] is not None:
                    if data:
                        msg["data"] = json.loads("\n".join(data))
                    return msg
                continue
            if line.startswith(":"):
                msg["comments"].append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "id":
                msg["id"] = value
            elif field == "retry":
                msg["retry"] = int(value)

    def events(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` messages that carry data."""
        out = []
        while len(out) < n:
            m = self.next()
            if m["data"] is not None:
                out.append(m)
        return out

    def close(self) -> None:
        self.conn.close()


def wait_subscribers(gw: LiveGateway, n: int, timeout_s: float = 5) -> None:
    wait_for(lambda: len(gw.st.relay.subs) == n, timeout_s, 0.02, f"{n} relay subscriber(s)")
