"""The event relay and the task WebSocket, on the real Redis with real clients.

Each WebSocket test runs on uvicorn's sans-I/O protocol (where the relay writes each batch
straight to the connection) and on its legacy ``websockets`` protocol (where it queues and a
task sends through ASGI), with and without permessage-deflate where that matters.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import gateway.ws
from gateway.relay import Batch, QueueSubscriber, id_key, ws_text_frame
from pipeline import events as ev
from pipeline.events import Event, Events
from tests.live_server import live_gateway, wait_subscribers

_LEGACY_WARNINGS = [pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
                    pytest.mark.filterwarnings("ignore::DeprecationWarning")]
IMPLS = [pytest.param("websockets-sansio", id="sansio"),
         pytest.param("websockets", id="legacy", marks=_LEGACY_WARNINGS)]


@pytest.fixture(params=IMPLS)
def gw(request, redis_url, r, tmp_path):
    with live_gateway(tmp_path / "data", redis_url, ws=request.param) as g:
        yield g


def recv(ws, timeout_s: float = 5) -> dict:
    return json.loads(ws.recv(timeout=timeout_s))


def recv_events(ws, n: int, timeout_s: float = 5) -> list[dict]:
    """The next ``n`` stream events (pings skipped)."""
    out = []
    while len(out) < n:
        m = recv(ws, timeout_s)
        if m["type"] != "ping":
            out.append(m)
    return out


def nothing_more(ws, wait_s: float = 0.3) -> None:
    try:
        m = ws.recv(timeout=wait_s)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {m}")


@pytest.mark.parametrize("compression", ["deflate", None])
def test_live_events_resume_and_filter(gw, r, compression):
    events = Events(r)
    with connect(gw.ws + "/ws/tasks/", compression=compression) as ws:
        first = recv(ws)
        assert first["type"] == "queue_status" and "active_tasks" in first["data"]
        wait_subscribers(gw, 1)
        a = events.emit(ev.TASK_STARTED, avid="DEMO-001", job_id="j1", stage="resolve")
        b = events.emit(ev.PROGRESS, avid="DEMO-002", job_id="j2", stage="download",
                        data={"percent": 12.5, "speed": "1.0 MB/s", "eta": "0:00:09"})
        c = events.emit(ev.TASK_COMPLETED, avid="DEMO-001", job_id="j1", data={"status": "completed"})
        got = recv_events(ws, 3)
        assert [m["id"] for m in got] == [a, b, c]
        assert [m["type"] for m in got] == ["task_started", "progress_update", "task_completed"]
        assert got[1]["data"] == {"task_id": "j2", "avid": "DEMO-002", "stage": "download",
                                  "ts": pytest.approx(got[1]["data"]["ts"]), "percent": 12.5,
                                  "speed": "1.0 MB/s", "eta": "0:00:09"}
    wait_subscribers(gw, 0)

    d = events.emit(ev.STAGE_STARTED, avid="DEMO-002", job_id="j2", stage="download")
    e = events.emit(ev.WARNING, avid="DEMO-001", job_id="j3", data={"message": "slow"})
    # Missed while away: exactly what came after the last id, then live, no duplicates.
    with connect(f"{gw.ws}/ws/tasks/?last_id={c}", compression=compression) as ws:
        assert recv(ws)["type"] == "queue_status"
        assert [m["id"] for m in recv_events(ws, 2)] == [d, e]
        f = events.emit(ev.TASK_FAILED, avid="DEMO-001", job_id="j3",
                        data={"message": "all sources failed", "reasons": ["missav: not found"]})
        live = recv_events(ws, 1)[0]
        assert live["id"] == f and live["data"]["reasons"] == ["missav: not found"]
        nothing_more(ws)

    # One title only (the filter is normalised like any AVID), resuming from the start.
    with connect(f"{gw.ws}/ws/tasks/?avid=demo001&last_id={a}", compression=compression) as ws:
        assert recv(ws)["type"] == "queue_status"
        assert [m["id"] for m in recv_events(ws, 3)] == [c, e, f]
        events.emit(ev.PROGRESS, avid="DEMO-002", job_id="j2", data={"percent": 50})
        g = events.emit(ev.PROGRESS, avid="DEMO-001", job_id="j4", data={"percent": 1})
        assert recv_events(ws, 1)[0]["id"] == g
        nothing_more(ws)


def test_requests_and_bad_input_keep_the_connection(gw):
    with connect(gw.ws + "/ws/tasks/") as ws:
        assert recv(ws)["type"] == "queue_status"
        ws.send("{not json")
        assert recv(ws) == {"type": "error", "message": "invalid JSON"}
        ws.send(b"\xff\x00")
        assert recv(ws)["type"] == "error"
        ws.send(json.dumps({"action": "fly"}))
        assert "unknown action" in recv(ws)["message"]
        ws.send(json.dumps({"action": "get_queue_status"}))
        assert recv(ws)["type"] == "queue_status"
        ws.send(json.dumps({"action": "ping"}))
        assert recv(ws)["type"] == "pong"


def test_server_pings_a_quiet_connection(gw, monkeypatch):
    monkeypatch.setattr(gateway.ws, "PING_INTERVAL_S", 0.2)
    with connect(gw.ws + "/ws/tasks/") as ws:
        assert recv(ws)["type"] == "queue_status"
        pings = [recv(ws, 2), recv(ws, 2)]
        assert [p["type"] for p in pings] == ["ping", "ping"]
        assert pings[1]["data"]["ts"] > pings[0]["data"]["ts"]


def test_bad_parameters(gw, r):
    with connect(gw.ws + "/ws/tasks/?avid=../../etc") as ws:
        m = recv(ws)
        assert m["type"] == "error" and "avid" in m["message"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1008
    # A malformed resume id is said so, and the connection carries on live.
    with connect(gw.ws + "/ws/tasks/?last_id=undefined") as ws:
        assert recv(ws)["type"] == "queue_status"
        assert "not a stream id" in recv(ws)["message"]
        wait_subscribers(gw, 1)
        x = Events(r).emit(ev.QUEUED, avid="DEMO-001", job_id="j9")
        assert recv_events(ws, 1)[0]["id"] == x


def test_browser_token_subprotocol_is_answered(gw):
    # With no token configured the page's remembered ["bearer", T] must still get a subprotocol
    # back, or the browser drops the connection.
    with connect(gw.ws + "/ws/tasks/", subprotocols=["bearer", "tok-123"]) as ws:
        assert ws.subprotocol == "bearer"
        assert recv(ws)["type"] == "queue_status"


@pytest.mark.parametrize("gw", [IMPLS[0]], indirect=True)
def test_slow_subscriber_is_dropped_and_resumes_without_loss(gw, r, monkeypatch):
    monkeypatch.setattr(gateway.ws, "MAX_BUFFER_BYTES", 32 * 1024)
    sock = socket.socket()
    # A slow link: a small receive window and a client that reads nothing.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gw.port))
    with connect(gw.ws + "/ws/tasks/", sock=sock, compression=None, max_queue=1) as ws:
        assert recv(ws)["type"] == "queue_status"
        wait_subscribers(gw, 1)
        (sub,) = gw.st.relay.subs
        # The server's end of the link too (the kernel would otherwise absorb megabytes).
        sub.writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        ids = []
        for chunk in range(10):  # several reads of the stream, so several writes
            pipe = r.pipeline(transaction=False)
            for i in range(100):
                pipe.xadd(ev.STREAM, ev.encode(ev.PROGRESS, avid="DEMO-001", job_id="slow",
                                               data={"percent": chunk * 10 + i / 10, "pad": "x" * 300}))
            ids += pipe.execute()
            time.sleep(0.05)
        wait_subscribers(gw, 0, timeout_s=10)  # dropped by the relay
        got, note = [], None
        while True:
            try:
                m = recv(ws, 10)
            except ConnectionClosed as e:
                assert e.rcvd is not None and e.rcvd.code == 1013, e
                break
            if m["type"] == "error":
                note = m
            elif m["type"] != "ping":
                got.append(m["id"])
    assert note is not None and got and note["last_id"] == got[-1], (note, got[-3:])
    assert got == ids[:len(got)] and len(got) < len(ids)
    with connect(f"{gw.ws}/ws/tasks/?last_id={note['last_id']}") as ws:
        assert recv(ws)["type"] == "queue_status"
        rest = [m["id"] for m in recv_events(ws, len(ids) - len(got), timeout_s=10)]
    assert got + rest == ids


# -- the relay's pieces, without a server ---------------------------------------------------

def _event(i: int, avid: str = "DEMO-001") -> Event:
    return Event(id=f"1700000000000-{i}", type=ev.PROGRESS, avid=avid, job_id="j", stage="download",
                 ts=1.0, data={"percent": i})


def test_frames_are_valid_server_frames():
    for n in (0, 125, 126, 65535, 65536):
        f = ws_text_frame(b"a" * n)
        assert f[0] == 0x81 and not f[1] & 0x80  # FIN + text; servers never mask
        length = f[1] & 0x7F
        if n < 126:
            assert length == n and len(f) == 2 + n
        elif n < 65536:
            assert length == 126 and int.from_bytes(f[2:4], "big") == n and len(f) == 4 + n
        else:
            assert length == 127 and int.from_bytes(f[2:10], "big") == n and len(f) == 10 + n


def test_batch_encodes_once_and_filters():
    b = Batch([_event(1), _event(2, "DEMO-002"), _event(3)])
    assert b.texts() is b.texts()
    assert json.loads(b.texts()[1])["data"]["avid"] == "DEMO-002"
    assert b.frames() == b"".join(ws_text_frame(t.encode()) for t in b.texts())
    assert b.sse().decode().startswith("id: 1700000000000-1\ndata: {")
    only = b.only("DEMO-001")
    assert [e.id for e in only.events] == ["1700000000000-1", "1700000000000-3"]
    assert b.only("DEMO-001") is only
    assert [e.id for e in b.after(id_key("1700000000000-2")).events] == ["1700000000000-3"]


def test_queue_subscriber_dedups_filters_and_overflows():
    async def run():
        s = QueueSubscriber("DEMO-001", max_pending_events=4)
        assert s.deliver(Batch([_event(1), _event(2, "DEMO-002")]))
        assert s.deliver(Batch([_event(1), _event(3)]))  # 1 again: a backlog overlap
        first = await s.get(0.1)
        second = await s.get(0.1)
        assert [e.id for e in first.events] == ["1700000000000-1"]
        assert [e.id for e in second.events] == ["1700000000000-3"]
        assert s.last_id == "1700000000000-3"
        assert not s.deliver(Batch([_event(i) for i in range(4, 10)]))  # 6 > 4 pending
        assert s.overflowed and s.done.is_set()

    import asyncio

    asyncio.run(run())


def test_live_connections_per_client_are_bounded(tmp_path, r, redis_url):
    """A flood of WebSockets from one address is refused past the configured bound."""
    from tests.live_server import live_gateway

    with live_gateway(tmp_path, redis_url, ws_max_per_client=3) as gw:
        url = gw.ws + "/ws/tasks/"
        held = [connect(url, open_timeout=5).__enter__() for _ in range(3)]
        try:
            for w in held:
                assert json.loads(w.recv(timeout=5))["type"] == "queue_status"
            with connect(url, open_timeout=5) as extra:
                msg = json.loads(extra.recv(timeout=5))
                assert msg["type"] == "error" and "too many live connections" in msg["message"]
        finally:
            for w in held:
                w.close()
        # Closed connections free their places (the server notices the close a moment later).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and gw.st.ws_limit.counts:
            time.sleep(0.05)
        with connect(url, open_timeout=5) as again:
            assert json.loads(again.recv(timeout=5))["type"] == "queue_status"
