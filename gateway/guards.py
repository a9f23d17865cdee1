"""What keeps a browser from being turned against the gateway (plain ASGI middleware).

A web page the user visits can make their browser send requests to the gateway: simple
cross-site POSTs (``text/plain`` and forms need no CORS preflight), requests through a DNS name
it rebinds to 127.0.0.1, WebSockets and EventSources (which CORS does not protect), and form
POSTs that carry cookies set for 127.0.0.1 (cookies ignore ports). Each check below closes one
way in; :class:`Gate` runs them, the body limit and the token (``gateway/auth.py``) as one
middleware, in this order (CORS, when configured, between the first two, in a second Gate):

- :func:`host_check`: the ``Host`` must be allowed (``gateway/hosts.py``) → else 400.
- ``OPTIONS`` is answered here with ``Allow`` and no data (:func:`answer_options`; a CORS
  preflight from an allowed origin has already been answered by CORSMiddleware, outside).
- then the three request checks, in this order. :func:`origin_check`: a request
  whose ``Origin`` is neither the service's own nor one of ``cors_origins`` → 403, whatever
  the method (a foreign page can never read an answer anyway, so nothing legitimate is lost,
  and GETs, the SSE stream and WebSocket handshakes are covered without listing them). No ``Origin`` (curl, the CLI, <img>) passes.
- :func:`dashboard_check`: a POST to the dashboard needs ``Authorization: Bearer`` or a
  same-origin ``Origin`` (``Referer`` when there is no Origin): its own CSRF check is a
  double-submit cookie that a page on another local port can set.
- :func:`content_type_check`: a body on POST/PUT/PATCH/DELETE must be ``application/json``
  (the dashboard's form POSTs excepted, guarded above) → else 415. A browser cannot send
  that type across origins without a preflight, which fails for an origin not allowed.
- then the body limit (``gateway.auth.BodyLimit``, 413) and the API token
  (``gateway.auth.TokenAuth``, 401/403/429).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from gateway.auth import deny
from gateway.hosts import HostPolicy, same_origin, split_host

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOW = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
JSON_TYPE = "application/json"

# A check looks at a request's scope and answers (status, message) to refuse it, None to let it on.
Check = Callable[[dict], "tuple[int, str] | None"]


def _header(scope: dict, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), or None."""
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class Gate:
    """The guards of a request as one ASGI layer (each layer costs every request a frame on
    every call and resume: issue 13), in this order, the first refusal answered
    (``gateway.auth.deny``) and nothing further seeing the request:

    1. ``checks`` on every HTTP request and WebSocket handshake;
    2. with ``answer_options``, an ``OPTIONS`` request is answered 204 with ``Allow`` and no data;
    3. ``request_checks``, as ``checks``;
    4. ``body`` (a :class:`gateway.auth.BodyLimit`): a declared length over the limit → 413, a
       chunked body counted as it is read;
    5. ``auth`` (a :class:`gateway.auth.TokenAuth`): the API token.

    ``body`` and ``auth`` are built with ``app=None``: this layer calls their ``screen`` and
    ``admit``. ``create_app`` puts CORS between 1 and 2 when it is configured (two Gates then)."""

    def __init__(self, app: Any, *, checks: Iterable[Check] = (), answer_options: bool = False,
                 request_checks: Iterable[Check] = (), body: Any = None, auth: Any = None):
        self.app, self.checks, self.answer_options = app, tuple(checks), answer_options
        self.request_checks, self.body, self.auth = tuple(request_checks), body, auth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        for check in self.checks:
            refusal = check(scope)
            if refusal is not None:
                await deny(scope, receive, send, *refusal)
                return
        if self.answer_options and kind == "http" and scope.get("method") == "OPTIONS":
            await answer_options(send)
            return
        for check in self.request_checks:
            refusal = check(scope)
            if refusal is not None:
                await deny(scope, receive, send, *refusal)
                return
        chunked = False
        if self.body is not None and kind == "http":
            chunked = await self.body.screen(scope, receive, send)
            if chunked is None:
                return
        if self.auth is not None:
            send = await self.auth.admit(scope, receive, send)
            if send is None:
                return
        if chunked:
            await self.body.counted(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Hosts whose verdict host_check remembers: a client sends the same few Host values, and the
# parse (ipaddress, regex) was ~6 % of a duplicate submit's CPU. Bounded, so a flood of made-up
# names cannot grow it; past the bound a value is judged afresh each time, as before.
HOST_VERDICTS_MAX = 256


def host_check(policy: HostPolicy) -> Check:
    """Refuse (400) a request whose ``Host`` is not allowed."""
    verdicts: dict[str | None, tuple[int, str] | None] = {}

    def judge(raw: str | None) -> tuple[int, str] | None:
        parts = split_host(raw) if raw is not None else None
        if parts is None or not policy.allows(parts[0]):
            shown = "none" if raw is None else repr(raw[:80])
            return 400, (f"Host {shown} is not served here: add its name to allowed_hosts in the config "
                         f"file (loopback names and addresses are always allowed)")
        return None

    def check(scope: dict) -> tuple[int, str] | None:
        raw = _header(scope, b"host")
        try:
            return verdicts[raw]
        except KeyError:
            verdict = judge(raw)
            if len(verdicts) < HOST_VERDICTS_MAX:
                verdicts[raw] = verdict
            return verdict
    return check


def origin_check(allowed: Iterable[str] = ()) -> Check:
    """Refuse (403) any request carrying an ``Origin`` that is neither the service's own (the
    ``Host`` it was sent to) nor one of ``allowed`` (``cors_origins``)."""
    listed = {o.strip().rstrip("/").lower() for o in allowed}

    def check(scope: dict) -> tuple[int, str] | None:
        origin = _header(scope, b"origin")
        if origin is not None and origin.strip().rstrip("/").lower() not in listed \
                and not same_origin(origin, _header(scope, b"host")):
            return 403, (f"requests from the web page at {origin[:80]!r} are refused: it is not this "
                         f"service's origin; list it in cors_origins in the config file to allow it")
        return None
    return check


def dashboard_check(prefix: str = "/dashboard") -> Check:
    """A state-changing request under ``prefix`` needs a bearer header or a same-origin page."""
    def trusted(scope: dict) -> bool:
        auth = _header(scope, b"authorization") or ""
        if auth[:7].lower() == "bearer ":
            return True  # a header no cross-site form or simple request can set
        host = _header(scope, b"host")
        origin = _header(scope, b"origin")
        if origin is not None:
            return same_origin(origin, host)
        referer = _header(scope, b"referer")
        return referer is not None and same_origin(referer, host)

    def check(scope: dict) -> tuple[int, str] | None:
        if scope["type"] == "http" and scope.get("method") in UNSAFE_METHODS \
                and _under(scope.get("path", ""), prefix) and not trusted(scope):
            return 403, ("dashboard actions need the page's own origin (use the dashboard in this "
                         "service's pages) or an Authorization: Bearer <token> header; a cookie alone is "
                         "not enough")
        return None
    return check


def content_type_check(exempt: Iterable[str] = ("/dashboard",)) -> Check:
    """Refuse (415) a POST/PUT/PATCH/DELETE body that is not declared ``application/json``."""
    prefixes = tuple(exempt)

    def has_body(scope: dict) -> bool:
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                return int(length) > 0
            except ValueError:
                return True  # BodyLimit answers 400 for it, if this does not first
        return _header(scope, b"transfer-encoding") is not None

    def check(scope: dict) -> tuple[int, str] | None:
        if scope["type"] == "http" and scope.get("method") in UNSAFE_METHODS and has_body(scope) \
                and not any(_under(scope.get("path", ""), p) for p in prefixes):
            declared = _header(scope, b"content-type")
            media = (declared or "").split(";", 1)[0].strip().lower()
            if media != JSON_TYPE:
                got = "none" if declared is None else repr(declared[:60])
                return 415, (f"the request body must be JSON: send Content-Type: {JSON_TYPE} "
                             f"(charset allowed; got {got})")
        return None
    return check


async def answer_options(send: Any) -> None:
    """Answer an ``OPTIONS`` with 204 and ``Allow``: it never reaches a route or the dashboard."""
    await send({"type": "http.response.start", "status": 204,
                "headers": [(b"allow", ALLOW), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
