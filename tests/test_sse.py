"""``GET /api/events``: the event stream as Server-Sent Events, on the real Redis over HTTP."""

from __future__ import annotations

import pytest

import gateway.sse
from pipeline import events as ev
from pipeline.events import Events
from tests.e2e_helpers import http
from tests.live_server import SSE, live_gateway, wait_subscribers


@pytest.fixture
def gw(redis_url, r, tmp_path):
    with live_gateway(tmp_path / "data", redis_url) as g:
        yield g


def test_stream_resume_and_filter(gw, r):
    events = Events(r)
    s = SSE(gw.base, "/api/events")
    try:
        assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
        first = s.next()
        assert first["retry"] == gateway.sse.RETRY_MS and first["id"] is None
        assert first["data"]["type"] == "queue_status"
        wait_subscribers(gw, 1)
        a = events.emit(ev.QUEUED, avid="DEMO-001", job_id="j1", data={"status": "queued"})
        b = events.emit(ev.PROGRESS, avid="DEMO-002", job_id="j2", data={"percent": 40.0, "eta": "0:00:03"})
        got = s.events(2)
        assert [m["id"] for m in got] == [a, b]
        # The same JSON a WebSocket client gets.
        assert got[1]["data"] == {"type": "progress_update", "id": b,
                                  "data": {"task_id": "j2", "avid": "DEMO-002", "stage": "",
                                           "ts": got[1]["data"]["data"]["ts"], "percent": 40.0,
                                           "eta": "0:00:03"}}
    finally:
        s.close()
    wait_subscribers(gw, 0)  # a client that leaves is unsubscribed

    c = events.emit(ev.TASK_COMPLETED, avid="DEMO-001", job_id="j1", data={"status": "completed"})
    d = events.emit(ev.TASK_FAILED, avid="DEMO-002", job_id="j2", data={"message": "blocked"})
    # What a browser's EventSource sends when it reconnects.
    s = SSE(gw.base, "/nassav/api/events", headers={"Last-Event-ID": b})
    try:
        assert s.next()["data"]["type"] == "queue_status"
        assert [m["id"] for m in s.events(2)] == [c, d]
    finally:
        s.close()
    s = SSE(gw.base, f"/api/events?last_id={a}&avid=demo-002")
    try:
        s.next()
        assert [m["id"] for m in s.events(2)] == [b, d]
        wait_subscribers(gw, 1)
        events.emit(ev.QUEUED, avid="DEMO-001", job_id="j3")
        e = events.emit(ev.QUEUED, avid="DEMO-002", job_id="j4")
        assert s.events(1)[0]["id"] == e
    finally:
        s.close()


def test_keepalive_comments(gw, monkeypatch):
    monkeypatch.setattr(gateway.sse, "KEEPALIVE_S", 0.2)
    s = SSE(gw.base, "/api/events")
    try:
        s.next()
        assert "keep-alive" in s.next()["comments"]
    finally:
        s.close()


def test_bad_filter_is_a_400(gw):
    code, body = http("GET", gw.base + "/api/events?avid=../etc")
    assert code == 400 and body["code"] == 400 and "avid" in body["message"]


def test_token_guards_the_stream(redis_url, r, tmp_path):
    with live_gateway(tmp_path / "data", redis_url, api_token="s3cret") as gw:
        code, _ = http("GET", gw.base + "/api/events")
        assert code == 401
        s = SSE(gw.base, "/api/events?token=s3cret")
        try:
            assert s.status == 200 and s.next()["data"]["type"] == "queue_status"
        finally:
            s.close()
