"""Contract of ``gateway/raw_frames.py`` with uvicorn's sans-I/O WebSocket protocol.

A tiny Starlette app runs under a real uvicorn on a free port; its WebSocket route writes
through ``RawFrameWriter`` and a real client reads. When uvicorn changes the private shape
the writer relies on, these tests fail naming the uvicorn version.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.sync.client import connect

from gateway.raw_frames import RawFrameWriter, UvicornChanged, check_shape, ws_text_frame
from tests.conftest import free_port, wait_for

CHANGED = f"uvicorn {uvicorn.__version__} changed its sans-I/O WebSocket protocol; update gateway/raw_frames.py"


async def writes_raw(websocket):
    await websocket.accept()
    writer = RawFrameWriter.attach(websocket)
    if writer is None:
        await websocket.send_text("no writer")
    else:
        assert not writer.closed() and writer.buffered_bytes() >= 0
        if writer.plain:
            writer.write_frames(ws_text_frame(b"plain one") + ws_text_frame("plain two é".encode()))
        else:
            assert writer.send_texts(["deflated one", "deflated two"])
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@contextmanager
def served(ws: str):
    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/raw", writes_raw)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws=ws, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 20, 0.02, "uvicorn to start")
        assert thread.is_alive(), "uvicorn died while starting"
        yield f"ws://127.0.0.1:{port}/raw"
    finally:
        server.should_exit = True
        thread.join(15)


def test_frames_written_raw_reach_a_real_client():
    with served("websockets-sansio") as url, connect(url, compression=None) as ws:
        got = [ws.recv(timeout=5), ws.recv(timeout=5)]
    assert got == ["plain one", "plain two é"], CHANGED


def test_a_compressed_connection_is_framed_by_its_own_protocol():
    with served("websockets-sansio") as url, connect(url, compression="deflate") as ws:
        got = [ws.recv(timeout=5), ws.recv(timeout=5)]
    assert got == ["deflated one", "deflated two"], CHANGED


@pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_other_protocols_get_no_writer():
    with served("websockets") as url, connect(url) as ws:
        assert ws.recv(timeout=5) == "no writer"


def test_a_reshaped_protocol_is_refused_naming_the_uvicorn_version():
    conn = SimpleNamespace(extensions=[], send_text=None)  # no data_to_send
    proto = SimpleNamespace(transport=None, conn=conn, close_sent=False)  # no disconnected
    with pytest.raises(UvicornChanged, match=f"uvicorn {uvicorn.__version__}.*disconnected, conn.data_to_send"):
        check_shape(proto)


def test_frames_are_valid_server_frames():
    for n, head in ((5, b"\x81\x05"), (200, b"\x81\x7e\x00\xc8"), (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big"))):
        assert ws_text_frame(b"a" * n) == head + b"a" * n
