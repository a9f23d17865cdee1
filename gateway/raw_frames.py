"""Writing WebSocket frames straight to uvicorn's transport: the relay's one door into uvicorn.

ASGI sends one message per ``send`` and uvicorn makes one syscall per message; at a thousand
subscribers that costs more than the two cores the gateway runs on (``tools/bench_relay.py``).
:class:`RawFrameWriter` lets the relay put a whole batch of frames on a connection in one
``transport.write``. It is the only code that touches uvicorn's private insides.

What it relies on (uvicorn 0.54, ``ws="websockets-sansio"``; checked by :func:`check_shape`
and by ``tests/test_raw_frames.py`` on a real uvicorn): a Starlette ``WebSocket``'s
``_receive`` is the bound ``receive`` of a ``WebSocketsSansIOProtocol``, whose instances have
``transport`` (an asyncio transport), ``conn`` (a ``websockets`` ``ServerProtocol`` with
``extensions``, ``send_text`` and ``data_to_send``), ``close_sent`` and ``disconnected``.
Any other protocol (the legacy ``websockets`` one, a middleware wrapping ``receive``) gets
no writer, and the relay sends through ASGI instead.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import uvicorn

from gateway.header_timeout import UvicornChanged
from pipeline.seams import report_once

log = logging.getLogger("nassav.relay")

INSTANCE_ATTRS = ("transport", "conn", "close_sent", "disconnected")
CONN_ATTRS = ("extensions", "send_text", "data_to_send")


def ws_text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (what a server sends, RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + n.to_bytes(8, "big")
    return head + payload


def _protocol_class() -> type | None:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:
        return None
    return WebSocketsSansIOProtocol


def check_shape(proto: Any) -> None:
    """Raise :class:`UvicornChanged`, naming the uvicorn version, when ``proto`` (a protocol
    instance) lacks what :class:`RawFrameWriter` uses."""
    missing = [a for a in INSTANCE_ATTRS if not hasattr(proto, a)]
    conn = getattr(proto, "conn", None)
    if conn is not None:
        missing += [f"conn.{a}" for a in CONN_ATTRS if not hasattr(conn, a)]
    if missing:
        raise UvicornChanged(
            f"uvicorn {uvicorn.__version__}: {type(proto).__name__} has no {', '.join(missing)}; "
            f"gateway/raw_frames.py was written for uvicorn 0.54 and must be updated")


class RawFrameWriter:
    """Frames written straight to one uvicorn WebSocket connection.

    Use :meth:`attach`, which answers None when the connection is not one it can write to.
    """

    def __init__(self, proto: Any):
        self._proto = proto
        self.transport = proto.transport  #: the connection's asyncio transport
        #: no extension negotiated: frames built once for every subscriber may be written as they are
        self.plain = not proto.conn.extensions

    @classmethod
    def attach(cls, websocket: Any) -> "RawFrameWriter | None":
        """A writer for a Starlette ``websocket`` served by uvicorn's sans-I/O protocol, else None.

        A protocol of the right class but the wrong shape (a newer uvicorn) also answers None,
        with one error in the log: the relay then sends through ASGI, slower but correct.
        """
        proto_cls = _protocol_class()
        proto = getattr(getattr(websocket, "_receive", None), "__self__", None)
        if proto_cls is None or not isinstance(proto, proto_cls):
            return None
        try:
            check_shape(proto)
        except UvicornChanged as e:
            report_once(log, e, "sending WebSocket events through ASGI instead")
            return None
        return cls(proto)

    def closed(self) -> bool:
        """The connection is closing or gone: nothing more may be written."""
        return self._proto.close_sent or self._proto.disconnected or self.transport.is_closing()

    def buffered_bytes(self) -> int:
        """Output written but not yet sent to the peer."""
        return self.transport.get_write_buffer_size()

    def write_frames(self, frames: bytes) -> None:
        """Write ready-made frames (only when :attr:`plain`)."""
        self.transport.write(frames)

    def send_texts(self, texts: Iterable[str]) -> bool:
        """Frame ``texts`` with the connection's own protocol object (it keeps compression
        state) and write them at once; False when the connection is already closing."""
        conn = self._proto.conn
        try:
            for t in texts:
                conn.send_text(t.encode())
        except Exception:  # websockets' InvalidState: the connection is closing
            return False
        self.transport.write(b"".join(conn.data_to_send()))
        return True
