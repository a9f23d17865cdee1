"""A header read timeout for uvicorn: one of the two places nassav relies on uvicorn's private
insides (the other, ``gateway/raw_frames.py``, writes the relay's WebSocket frames).

uvicorn (0.54) times out idle kept-alive connections but never the reading of a request's
headers: a socket that sends one byte every few seconds holds a connection, and a slot of
``limit_concurrency``, forever. :func:`protocol_class` returns a subclass of uvicorn's HTTP
protocol (httptools or h11) that answers 408 and closes a connection whose request headers
are not complete ``header_timeout_s`` after it opened, or after the previous answer plus the
keep-alive idle time. A request in progress (a slow handler, an event stream) and an upgraded
WebSocket are never touched.

What it relies on (checked by :func:`check_shape` at start-up, and by
``tests/security/test_load.py``): the protocols' ``connection_made``, ``connection_lost``,
``on_response_complete`` and ``handle_websocket_upgrade`` methods; httptools'
``on_headers_complete`` parser callback; h11's ``data_received`` creating a new ``scope``
dict per request; the instance attributes ``loop``, ``transport``, ``cycle`` (with
``response_complete``), ``scope`` and ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

log = logging.getLogger("nassav.gateway")

SETTING = "gateway.header_timeout_s"
_COMMON = ("connection_made", "connection_lost", "on_response_complete", "handle_websocket_upgrade")
_HOOKS = {"httptools": (*_COMMON, "on_headers_complete"), "h11": (*_COMMON, "data_received")}
INSTANCE_ATTRS = ("loop", "transport", "cycle", "scope", "timeout_keep_alive")


class UvicornChanged(RuntimeError):
    """uvicorn's protocol classes no longer have the shape a seam into them relies on."""


def base_class(http: str) -> type:
    """uvicorn's protocol class for ``http`` ("httptools" or "h11")."""
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        return HttpToolsProtocol
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol
        return H11Protocol
    raise ValueError(f"http must be httptools or h11 (got {http!r})")


def check_shape(http: str, cls: type | None = None) -> None:
    """Raise :class:`UvicornChanged`, naming the uvicorn version, when a hook of ``http``'s
    protocol class (or of ``cls`` standing in for it) is missing."""
    cls = cls or base_class(http)
    missing = [h for h in _HOOKS[http] if not callable(getattr(cls, h, None))]
    if missing:
        raise UvicornChanged(
            f"uvicorn {uvicorn.__version__}: {cls.__name__} has no {', '.join(missing)}; "
            f"gateway/header_timeout.py ({SETTING}) was written for uvicorn 0.54 and must be updated")


class _HeaderDeadline:
    """Mixed in before a uvicorn HTTP protocol class (see the module docstring)."""

    header_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    timeout_keep_alive: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            # The next request may first idle for the keep-alive time (uvicorn closes the
            # connection then); once its first byte arrives, the headers get the rest.
            self._arm(self.timeout_keep_alive + self.header_timeout_s)

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._disarm()  # the transport now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def _arm(self, delay_s: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its headers did arrive
        log.debug("closing a connection whose request headers did not arrive within %g s",
                  self.header_timeout_s)
        msg = (f"request headers not received within {self.header_timeout_s:g} s "
               f"({SETTING})").encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"content-length: " + str(len(msg)).encode() + b"\r\nconnection: close\r\n\r\n"
                             + msg)
        self.transport.close()


class _HttpToolsDeadline(_HeaderDeadline):
    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()  # type: ignore[misc]


class _H11Deadline(_HeaderDeadline):
    scope: Any

    def data_received(self, data: bytes) -> None:
        before = self.scope
        super().data_received(data)  # type: ignore[misc]
        if self.scope is not before:  # h11 delivered a complete request head
            self._disarm()


def protocol_class(http: str, header_timeout_s: float) -> type:
    """uvicorn's ``http`` protocol class with a header read timeout, for ``uvicorn.Config(http=…)``."""
    check_shape(http)
    base = base_class(http)
    mixin = _HttpToolsDeadline if http == "httptools" else _H11Deadline
    return type(f"HeaderTimeout{base.__name__}", (mixin, base), {"header_timeout_s": float(header_timeout_s)})
