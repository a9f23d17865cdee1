"""The API token, the bind check, and the request body limit (all plain ASGI middleware).

When a token is configured, every route but the public ones (``/health``) needs it, given as
``Authorization: Bearer T``; browsers, which cannot set headers everywhere, may use
``?token=T`` or, on a WebSocket, the subprotocols ``["bearer", T]`` (or one ``"bearer.T"``),
which the server accepts back. A ``?token=`` that opened ``/dashboard`` or ``/docs`` also sets
a cookie limited to that path, so the pages' own links and assets keep working.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from http.cookies import SimpleCookie
from typing import Any, Iterable
from urllib.parse import parse_qs

from pipeline.config import Config

PUBLIC_PATHS = ("/health",)
COOKIE = "nassav_token"
COOKIE_PATHS = ("/dashboard", "/docs")
SUBPROTOCOL = "bearer"
MAX_BODY_BYTES = 1 << 20

TOKEN_HELP = ("set a token: api_token in the config file or NASSAV_API_TOKEN in the environment "
              "(e.g. NASSAV_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'))")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_problem(config: Config) -> str | None:
    """Why the gateway must not start as configured (None: fine)."""
    if not config.api_token and not is_loopback(config.host):
        return (f"refusing to listen on {config.host} without an API token: anyone on the network "
                f"could use it; {TOKEN_HELP}, or bind to 127.0.0.1")
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


async def _deny(scope: dict, receive: Any, send: Any, code: int, message: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # Closing before accepting makes the server answer the handshake with HTTP 403.
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"code": code, "message": message, "data": None}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="nassav"'))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """Require ``token`` on every path but ``public``; pass everything through when it is empty."""

    def __init__(self, app: Any, token: str | None, *, public: Iterable[str] = PUBLIC_PATHS):
        self.app = app
        self.token = (token or "").encode()
        self.public = tuple(public)

    def _given(self, scope: dict) -> tuple[str | None, str, str | None]:
        """(token, how it came, the subprotocol to accept back)."""
        headers = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip(), "header", None
        if scope["type"] == "websocket":
            protos = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
            for i, p in enumerate(protos):
                if p == SUBPROTOCOL and i + 1 < len(protos):
                    return protos[i + 1], "subprotocol", SUBPROTOCOL
                if p.startswith(SUBPROTOCOL + "."):
                    return p[len(SUBPROTOCOL) + 1:], "subprotocol", p
        q = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if q:
            return q[0], "query", None
        path = scope.get("path", "")
        if any(_under(path, p) for p in COOKIE_PATHS) and "cookie" in headers:
            c = SimpleCookie()
            try:
                c.load(headers["cookie"])
            except Exception:
                return None, "", None
            if COOKIE in c:
                return c[COOKIE].value, "cookie", None
        return None, "", None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.token:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in self.public or (scope["type"] == "http" and scope.get("method") == "OPTIONS"):
            await self.app(scope, receive, send)
            return
        given, how, accept_proto = self._given(scope)
        if given is None:
            await _deny(scope, receive, send, 401, "an API token is required: send Authorization: Bearer "
                                                   "<token> (or ?token=<token> from a browser)")
            return
        if not hmac.compare_digest(given.encode(), self.token):
            await _deny(scope, receive, send, 403, "wrong API token")
            return
        if accept_proto:
            await self.app(scope, receive, _accept_with(send, accept_proto))
        elif how == "query" and scope["type"] == "http":
            prefix = next((p for p in COOKIE_PATHS if _under(path, p)), None)
            await self.app(scope, receive, _set_cookie(send, given, prefix) if prefix else send)
        else:
            await self.app(scope, receive, send)


def _accept_with(send: Any, proto: str) -> Any:
    async def wrapped(message: dict) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": proto}
        await send(message)
    return wrapped


def _set_cookie(send: Any, token: str, path: str) -> Any:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            value = f"{COOKIE}={token}; Path={path}; HttpOnly; SameSite=Strict"
            message = {**message, "headers": [*message.get("headers", []),
                                              (b"set-cookie", value.encode("latin-1"))]}
        await send(message)
    return wrapped


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Answer 413 to a request body larger than ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k.lower() == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    await _deny(scope, receive, send, 400, "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
        seen = 0
        started = False

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except _TooLarge:
            if started:
                raise
            await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps({"code": 413, "message": f"request body larger than {self.max_bytes} bytes",
                           "data": None}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
