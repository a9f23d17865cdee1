"""Hostile input on the real gateway: deeply nested JSON in every body the API parses and in
WebSocket messages, and WebSocket messages over the 1 MiB body limit.

Each answer is a 400 (HTTP) or an ``error`` message (WebSocket) that says what was wrong, and
nothing in the log carries a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.auth import MAX_BODY_BYTES
from gateway.json_input import MAX_DEPTH
from tests.live_server import live_gateway
from tests.security.raw_http import request_bytes, send

# Every route that reads a JSON body.
BODY_ROUTES = [("POST", "/api/resource"), ("POST", "/api/resources/batch"),
               ("POST", "/api/downloads/batch_submit"), ("PUT", "/api/setting"),
               ("POST", "/api/source/cookie"), ("DELETE", "/api/source/cookie"),
               ("PATCH", "/api/resource/ABC-001/status"), ("POST", "/nassav/api/resource")]

BOMBS = {
    "100k [": b"[" * 100_000,
    "100k [ closed": b"[" * 100_000 + b"]" * 100_000,
    "100k {\"a\":": b'{"a":' * 100_000,
    # Parses without a RecursionError, but deeper than any request needs.
    f"{MAX_DEPTH + 1} objects": b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
}


def _tracebacks(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.fixture
def gw(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url) as g:
        yield g


def test_deeply_nested_bodies_are_a_400_without_a_traceback(gw, caplog):
    caplog.set_level(logging.WARNING)

    async def main():
        out = []
        for method, path in BODY_ROUTES:
            for name, body in BOMBS.items():
                a = await send(gw.port, request_bytes(method, path, gw.port, body), timeout_s=20)
                out.append((method, path, name, a))
        return out

    for method, path, name, a in asyncio.run(main()):
        assert a.status == 400, (method, path, name, a.status, a.body[:200])
        message = a.json()["message"]
        assert f"nested deeper than {MAX_DEPTH} levels" in message and "JSON object" in message, message
    # A shallow body still works on the same routes (the limit is not in the way).
    ok = asyncio.run(send(gw.port, request_bytes("POST", "/api/resource", gw.port, b'{"avid": "ABC-001"}')))
    assert ok.status == 202, ok.body
    assert not _tracebacks(caplog), _tracebacks(caplog)


def test_deeply_nested_websocket_messages_get_an_error_and_the_connection_stays(gw, caplog):
    caplog.set_level(logging.WARNING)
    with connect(gw.ws + "/ws/tasks/") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "queue_status"
        for body in BOMBS.values():
            ws.send(body.decode())
            err = json.loads(ws.recv(timeout=10))
            assert err["type"] == "error" and f"nested deeper than {MAX_DEPTH} levels" in err["message"], err
        ws.send(b"[" * 100_000)  # as a binary frame too
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
    assert not _tracebacks(caplog), _tracebacks(caplog)


@pytest.mark.parametrize("ws_impl", ["websockets-sansio", pytest.param(
    "websockets", marks=[pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
                          pytest.mark.filterwarnings("ignore::DeprecationWarning")])])
def test_websocket_messages_over_the_body_limit_close_the_connection(tmp_path, r, redis_url, caplog, ws_impl):
    caplog.set_level(logging.WARNING)
    with live_gateway(tmp_path / "data", redis_url, ws=ws_impl) as g:
        with connect(g.ws + "/ws/tasks/", max_size=None) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "queue_status"
            ws.send(json.dumps({"action": "ping"}) + " " * (MAX_BODY_BYTES - 100))  # just under: fine
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
            ws.send(" " * (MAX_BODY_BYTES + 1))
            with pytest.raises(ConnectionClosed) as e:
                while True:
                    ws.recv(timeout=10)
            assert e.value.rcvd is not None and e.value.rcvd.code == 1009  # message too big
    assert not _tracebacks(caplog), _tracebacks(caplog)
