"""Serve the original NASSAV Vue client (a built ``dist/``) in front of a nassav gateway, as
the old deployment's nginx did: one origin, the client's files at ``/`` (any unknown path gets
``index.html``, since the client routes in the browser's history), and ``/nassav/`` — HTTP and
the task WebSocket — passed to the gateway.

Like nginx with ``proxy_set_header Host $host``, the browser's ``Host`` and ``Origin`` reach
the gateway unchanged, so its guards see one origin: on 127.0.0.1/localhost nothing needs
configuring; served under another name, list that name in nassav's ``allowed_hosts``
(docs/compat.md, "Running the old client").

Build the client first (it is not part of this repository):

    git -C <NASSAV clone> archive HEAD:vue_frontend | tar -x -C /tmp/vue
    cd /tmp/vue && npm install && npm run build

then:  python -m tools.old_client --dist /tmp/vue/dist --gateway http://127.0.0.1:8000 --port 8080
and open http://127.0.0.1:8080/.  Development only: no TLS, no caching, no access log rotation.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

PREFIX = "/nassav"
# Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, never passed on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
CHUNK = 64 * 1024


class Upstream:
    """The gateway's address, parsed once."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--gateway must be an http(s) URL like http://127.0.0.1:8000, not {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.ws_scheme = "wss" if self.https else "ws"
        self.netloc = parts.netloc

    def connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=60)


def _forwarded(headers: list[tuple[str, str]], client_host: str) -> list[tuple[str, str]]:
    """The request's headers as nginx passes them: Host kept, hop-by-hop dropped, X-Forwarded-* added."""
    out = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
    out += [("X-Forwarded-For", client_host), ("X-Forwarded-Proto", "http")]
    return out


def _body_chunks(resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> Iterator[bytes]:
    try:
        while chunk := resp.read1(CHUNK):
            yield chunk
    finally:
        conn.close()


def build_app(dist: Path, gateway: str) -> Starlette:
    """The one-origin app: ``dist`` at ``/``, ``/nassav/…`` passed to ``gateway``."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        raise ValueError(f"{dist} has no index.html: pass the client's built dist/ folder (npm run build)")
    up = Upstream(gateway)

    async def proxy_http(request: Request) -> Response:
        body = await request.body()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = _forwarded(request.headers.items(), request.client.host if request.client else "")

        def send() -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
            conn = up.connection()
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            if body or request.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            return conn, conn.getresponse()

        try:
            conn, resp = await run_in_threadpool(send)
        except OSError as e:
            return Response(f"502: the nassav gateway at {gateway} is not answering ({e})\n",
                            status_code=502, media_type="text/plain")
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        streamed = StreamingResponse(iterate_in_threadpool(_body_chunks(resp, conn)), status_code=resp.status)
        streamed.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
        return streamed

    async def proxy_ws(ws: WebSocket) -> None:
        # The URI carries the browser's Host (websockets writes its Host header from the URI);
        # host/port send the connection to the gateway, as nginx's `proxy_set_header Host $host`.
        path = ws.url.path + (f"?{ws.url.query}" if ws.url.query else "")
        target = f"{up.ws_scheme}://{ws.headers.get('host') or up.netloc}{path}"
        passed = {k: v for k, v in ws.headers.items() if k.lower() in ("cookie", "authorization", "user-agent")}
        try:
            upstream = await ws_connect(target, host=up.host, port=up.port, additional_headers=passed,
                                        origin=ws.headers.get("origin"), open_timeout=10, max_size=None,
                                        server_hostname=up.host if up.https else None)
        except Exception:
            await ws.close(code=1011)
            return
        await ws.accept()

        async def to_gateway() -> None:
            try:
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return
                    await upstream.send(msg["text"] if msg.get("text") is not None else msg.get("bytes") or b"")
            except (WebSocketDisconnect, ConnectionClosed):
                return

        async def to_browser() -> None:
            try:
                async for data in upstream:
                    if isinstance(data, str):
                        await ws.send_text(data)
                    else:
                        await ws.send_bytes(data)
            except ConnectionClosed:
                return

        tasks = [asyncio.create_task(to_gateway()), asyncio.create_task(to_browser())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        await upstream.close()
        try:
            await ws.close()
        except RuntimeError:
            pass  # already closed by the browser

    async def client_files(request: Request) -> Response:
        rel = request.path_params.get("path", "")
        candidate = (dist / rel).resolve()
        if rel and candidate.is_file() and candidate.is_relative_to(dist):
            return FileResponse(candidate)
        return FileResponse(index)  # the client's history routes (/resource/X, /settings…)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[
        WebSocketRoute(PREFIX + "/{rest:path}", proxy_ws),
        Route(PREFIX + "/{rest:path}", proxy_http, methods=methods),
        Route("/{path:path}", client_files, methods=["GET", "HEAD"]),
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.old_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dist", required=True, type=Path, help="the client's built folder (vue_frontend/dist)")
    p.add_argument("--gateway", default="http://127.0.0.1:8000",
                   help="the nassav gateway's URL (default http://127.0.0.1:8000)")
    p.add_argument("--port", type=int, default=8080, help="port to serve the client on (default 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = p.parse_args(argv)
    try:
        app = build_app(args.dist, args.gateway)
    except ValueError as e:
        p.error(str(e))
    print(f"old client on http://{args.host}:{args.port}/  →  /nassav/ passed to {args.gateway}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws="websockets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
