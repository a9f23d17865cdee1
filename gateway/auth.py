"""The API token, the bind check, and the request body limit (all plain ASGI middleware).

When a token is configured, every route but the public ones (``/health``) needs it, given as
``Authorization: Bearer T``; browsers, which cannot set headers everywhere, may use
``?token=T`` or, on a WebSocket, the subprotocols ``["bearer", T]`` (or one ``"bearer.T"``),
which the server accepts back. A ``?token=`` that opened ``/dashboard`` or ``/docs`` also sets
a cookie limited to that path, so the pages' own links and assets keep working (the cookie
alone never makes a dashboard POST: see ``gateway/guards.py``). Wrong tokens are counted per
client address (``gateway/ratelimit.py``): past the limit the client gets 429 for a while.
``OPTIONS`` gets no exemption here: ``gateway/guards.py`` answers it before it could get here.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any, Iterable
from urllib.parse import parse_qs

import anyio

from gateway.hosts import is_loopback
from gateway.ratelimit import FailureWindow
from pipeline.config import Config

PUBLIC_PATHS = ("/health",)
COOKIE = "nassav_token"
COOKIE_PATHS = ("/dashboard", "/docs")
SUBPROTOCOL = "bearer"
MAX_BODY_BYTES = 1 << 20
MIN_TOKEN_CHARS = 16
WS_DENIAL_DRAIN_S = 2.0

TOKEN_HELP = ("set a token: api_token in the config file or NASSAV_API_TOKEN in the environment "
              "(e.g. NASSAV_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'))")


__all__ = ["BodyLimit", "TokenAuth", "bind_problem", "deny", "is_loopback"]


def bind_problem(config: Config) -> str | None:
    """Why the gateway must not start as configured (None: fine).

    Beyond loopback the token is all that stands between the network and the library, so it
    must be long enough not to be guessed (the rate limit slows guessing, it cannot stop it)."""
    if is_loopback(config.host):
        return None
    token = config.api_token or ""
    if not token:
        return (f"refusing to listen on {config.host} without an API token: anyone on the network "
                f"could use it; {TOKEN_HELP}, or bind to 127.0.0.1")
    if len(token) < MIN_TOKEN_CHARS or token.strip() != token or not token.isprintable() or \
            any(c.isspace() for c in token):
        return (f"refusing to listen on {config.host} with a weak API token ({len(token)} characters): "
                f"it needs at least {MIN_TOKEN_CHARS} printable characters and no spaces; {TOKEN_HELP}")
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


async def deny(scope: dict, receive: Any, send: Any, code: int, message: str,
               headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer with the API's JSON envelope and ``code``, before any route runs.

    A WebSocket handshake gets the same HTTP answer where the server supports the ASGI
    denial-response extension (uvicorn does); elsewhere closing before accepting makes the
    server answer it with a bare 403, the message going in the close reason."""
    body = json.dumps({"code": code, "message": message, "data": None}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *headers]
    if code == 401:
        head.append((b"www-authenticate", b'Bearer realm="nassav"'))
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": code, "headers": head})
            await send({"type": "websocket.http.response.body", "body": body})
            await _until_gone(receive)
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await send({"type": "http.response.start", "status": code, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _until_gone(receive: Any) -> None:
    """Wait (briefly) for the server to report the refused WebSocket's connection lost.

    uvicorn's websockets-sansio protocol (0.54) marks the handshake complete only when the
    connection is lost, not when the denial response is sent; an app that returns before that
    gets "ASGI callable returned without completing handshake" logged as an error for every
    refused handshake. Its second ``websocket.disconnect`` comes from the connection loss."""
    with anyio.move_on_after(WS_DENIAL_DRAIN_S):
        for _ in range(2):
            while (await receive())["type"] != "websocket.disconnect":
                pass


class TokenAuth:
    """Require ``token`` on every path but ``public``; pass everything through when it is empty.

    ``failures`` (optional) counts wrong tokens per client address and pauses a client past
    its limit with a 429 that says when to retry."""

    def __init__(self, app: Any, token: str | None, *, public: Iterable[str] = PUBLIC_PATHS,
                 failures: FailureWindow | None = None):
        self.app = app
        self.token = (token or "").encode()
        self.public = tuple(public)
        self.failures = failures

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
        send = await self.admit(scope, receive, send)
        if send is not None:
            await self.app(scope, receive, send)

    async def admit(self, scope: dict, receive: Any, send: Any) -> Any:
        """For an HTTP request or a WebSocket handshake: the ``send`` to go on with (wrapped
        when the answer must carry a cookie or a subprotocol), or None when it was refused
        here (the refusal already sent). :class:`gateway.guards.Gate` calls it in its layer."""
        if not self.token:
            return send
        path = scope.get("path", "")
        if path in self.public:
            return send
        given, how, accept_proto = self._given(scope)
        if given is None:
            await deny(scope, receive, send, 401, "an API token is required: send Authorization: Bearer "
                                                  "<token> (or ?token=<token> from a browser)")
            return None
        client = (scope.get("client") or ("?", 0))[0]
        if self.failures is not None:
            wait_s = self.failures.retry_after_s(client)
            if wait_s:
                await deny(scope, receive, send, 429,
                           f"too many wrong API tokens from {client} (limit {self.failures.limit} in "
                           f"{self.failures.window_s:g} s: auth_fail_limit, auth_fail_window_s); "
                           f"retry in {wait_s} s", headers=[(b"retry-after", str(wait_s).encode())])
                return None
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token):
            if self.failures is not None:
                self.failures.fail(client)
            await deny(scope, receive, send, 403, "wrong API token")
            return None
        if accept_proto:
            return _accept_with(send, accept_proto)
        if how == "query" and scope["type"] == "http":
            prefix = next((p for p in COOKIE_PATHS if _under(path, p)), None)
            return _set_cookie(send, given, prefix) if prefix else send
        return send


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
        chunked = await self.screen(scope, receive, send)
        if chunked:
            await self.counted(self.app, scope, receive, send)
        elif chunked is not None:
            await self.app(scope, receive, send)

    async def screen(self, scope: dict, receive: Any, send: Any) -> bool | None:
        """For an HTTP request: None when its declared length was refused here (the answer
        already sent), True when its body is chunked (run the app through :meth:`counted`),
        False when nothing more is needed. :class:`gateway.guards.Gate` calls it in its layer."""
        chunked = False
        for k, v in scope.get("headers", []):
            k = k.lower()
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    await deny(scope, receive, send, 400, "Content-Length is not a number")
                    return None
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return None
            elif k == b"transfer-encoding":
                chunked = True
        # Without a chunked body the server reads no more than the Content-Length checked
        # above (or nothing): no byte count needed, and every request (each submit) is
        # spared the two wrappers of counted().
        return chunked

    async def counted(self, app: Any, scope: dict, receive: Any, send: Any) -> None:
        """Run ``app`` on a chunked request, answering 413 once its body passes the limit."""
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
            await app(scope, limited, tracked)
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
