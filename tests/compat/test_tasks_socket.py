"""The old client's task WebSocket, against `nassav up` (gateway, workers, embedded Redis) and
the fixture site: the old message types and order, download jobs only, a second tab."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from tests.e2e_helpers import EventRecorder, Service, http
from tools.fixture_site import FixtureSite

OLD_TYPES = {"queue_status", "task_started", "progress_update", "task_completed", "task_failed"}
TASK_EVENTS = ("task_started", "task_completed", "task_failed")
QUEUE_KEYS = {"active_tasks", "pending_tasks", "active_count", "pending_count", "total_count"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One service for the module (its own embedded Redis); each test uses its own AVIDs."""
    tmp = tmp_path_factory.mktemp("compat-socket")
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002", "DEMO-003", "DEMO-004", "DEMO-005", "DEMO-006"),
                             stream_kind="clear", duration_s=8.0, segment_s=1.0)
    data_dir = tmp / "data"
    data_dir.mkdir()
    # One segment at a time, so a download lasts long enough to be watched.
    cfg = site.write_config(tmp / "config.yaml", data_dir=data_dir, extra={"download": {"concurrency": 1}})
    svc = Service(cfg, data_dir, drop_redis_env=True)
    try:
        svc.wait_ready()
        svc.site = site  # type: ignore[attr-defined]
        svc.ws = f"ws://127.0.0.1:{svc.port}"  # type: ignore[attr-defined]
        yield svc
    finally:
        svc.stop()
        site.stop()


@pytest.fixture
def site(served):
    served.site.reset()
    yield served.site
    served.site.reset()


def old_messages(rec: EventRecorder) -> list[dict]:
    return [m for m in list(rec.messages) if m.get("type") != "ping"]


def followed_by_queue_status(msgs: list[dict]) -> bool:
    """Every task event is immediately followed by a queue_status."""
    return all(i + 1 < len(msgs) and msgs[i + 1]["type"] == "queue_status"
               for i, m in enumerate(msgs) if m["type"] in TASK_EVENTS)


def listed(status: dict, job: str) -> str:
    """Where the old queue lists a job: "active", "pending" or ""."""
    if any(t["task_id"] == job for t in status["active_tasks"]):
        return "active"
    if any(t["task_id"] == job for t in status["pending_tasks"]):
        return "pending"
    return ""


def test_a_download_in_the_old_order(served, site):
    site.set_faults(latency_ms=300)
    rec = EventRecorder(served.ws + "/nassav/ws/tasks/")
    try:
        first = rec.wait_type("queue_status", timeout_s=10)
        assert rec.messages[0] is first and QUEUE_KEYS <= set(first["data"])
        code, body = http("POST", served.base + "/nassav/api/downloads/demo-001")
        assert code == 202, body
        job = body["data"]["task_id"]
        rec.wait_type("task_completed", job, timeout_s=120)
        wait_for(lambda: followed_by_queue_status(old_messages(rec)), 10, 0.05, "the queue_status after the end")
        msgs = old_messages(rec)
        assert {m["type"] for m in msgs} <= OLD_TYPES, {m["type"] for m in msgs}
        assert followed_by_queue_status(msgs)
        mine = [m for m in msgs if m["type"] != "queue_status"]
        assert [m["type"] for m in mine if m["type"] != "progress_update"] == ["task_started", "task_completed"]
        assert all(m["data"]["task_id"] == job and m["data"]["avid"] == "DEMO-001" for m in mine)

        # Submitted: a queue_status lists it as pending before it starts downloading.
        assert listed(msgs[1]["data"], job) == "pending" and msgs[1]["type"] == "queue_status"
        started = next(i for i, m in enumerate(msgs) if m["type"] == "task_started")
        assert msgs[started]["data"]["status"] == "started"
        # The task event carries the queue too (the client rebuilds its list from it).
        assert QUEUE_KEYS <= set(msgs[started]["data"])
        assert listed(msgs[started + 1]["data"], job) == "active"
        active = next(t for t in msgs[started + 1]["data"]["active_tasks"] if t["task_id"] == job)
        assert active["avid"] == "DEMO-001" and active["state"] == "STARTED"
        assert isinstance(active["progress"]["percent"], float) and isinstance(active["progress"]["speed"], str)

        progress = [m["data"] for m in mine if m["type"] == "progress_update"]
        assert progress and progress[-1]["percent"] == 100
        assert all(set(p) == {"task_id", "avid", "percent", "speed", "eta"} for p in progress)
        assert [p["percent"] for p in progress] == sorted(p["percent"] for p in progress)
        assert all(p["speed"].endswith("/s") for p in progress)

        done = next(i for i, m in enumerate(msgs) if m["type"] == "task_completed")
        assert msgs[done]["data"]["status"] == "success" and msgs[done]["data"]["message"]
        assert listed(msgs[done + 1]["data"], job) == ""
        assert msgs[-1]["type"] == "queue_status" and msgs[-1]["data"]["total_count"] == 0
    finally:
        rec.close()


def test_metadata_jobs_never_look_like_downloads(served, site):
    """An add and a refresh run their stages (nassav's own socket shows their task events);
    the old client's socket shows nothing of them: no toast, no card flipped, no queue row."""
    own = EventRecorder(served.ws + "/ws/tasks/")
    old = EventRecorder(served.ws + "/nassav/ws/tasks/")
    try:
        old.wait_type("queue_status", timeout_s=10)
        own.wait_type("queue_status", timeout_s=10)
        code, body = http("POST", served.base + "/api/resource", {"avid": "DEMO-002"})
        assert code == 202, body
        add = body["data"]["job_id"]
        assert own.wait_type("task_started", add, timeout_s=60)["data"]["kind"] == "metadata"
        own.wait_type("task_completed", add, timeout_s=60)
        code, body = http("POST", served.base + "/api/resource/refresh/DEMO-002")
        assert code == 202, body
        refresh = body["data"]["job_id"]
        own.wait_type("task_completed", refresh, timeout_s=60)
        # Give the old socket's feed the time to have said something, if it were to.
        old.ws.send(json.dumps({"action": "get_queue_status"}))
        wait_for(lambda: len([m for m in old_messages(old) if m["type"] == "queue_status"]) >= 2, 5, 0.05,
                 "the answer to get_queue_status")
        time.sleep(0.5)
        msgs = old_messages(old)
        assert [m["type"] for m in msgs] == ["queue_status", "queue_status"], msgs
        assert all(m["data"]["total_count"] == 0 for m in msgs)
        assert (served.data_dir / "DEMO-002" / "DEMO-002.json").exists()
        assert not (served.data_dir / "DEMO-002" / "DEMO-002.mp4").exists()
    finally:
        own.close()
        old.close()


def test_a_second_tab_sees_the_running_download(served, site):
    site.set_faults(latency_ms=600)
    tab1 = EventRecorder(served.ws + "/nassav/ws/tasks/")
    tab2 = None
    try:
        tab1.wait_type("queue_status", timeout_s=10)
        code, body = http("POST", served.base + "/nassav/api/downloads/DEMO-003")
        assert code == 202, body
        job = body["data"]["task_id"]
        tab1.wait_type("progress_update", job, timeout_s=60)
        tab2 = EventRecorder(served.ws + "/nassav/ws/tasks/")
        first = tab2.wait_type("queue_status", timeout_s=10)
        assert tab2.messages[0] is first
        assert listed(first["data"], job) == "active", first
        task = first["data"]["active_tasks"][0]
        assert task["task_id"] == job and task["avid"] == "DEMO-003" and task["state"] == "STARTED"
        assert 0 <= task["progress"]["percent"] < 100 and task["progress"]["speed"].endswith("/s")
        assert first["data"]["active_count"] == 1 and first["data"]["total_count"] == 1
        tab2.wait_type("task_completed", job, timeout_s=120)
        wait_for(lambda: followed_by_queue_status(old_messages(tab2)), 10, 0.05, "the queue_status after the end")
        assert old_messages(tab2)[-1]["data"]["total_count"] == 0
    finally:
        tab1.close()
        if tab2:
            tab2.close()


def test_a_failed_download_names_its_error(served, site):
    from pipeline.config import DEFAULT_SOURCES

    for name in DEFAULT_SOURCES:
        site.set_scenario(name, "not_found", avid="DEMO-004")
    rec = EventRecorder(served.ws + "/nassav/ws/tasks/")
    try:
        rec.wait_type("queue_status", timeout_s=10)
        code, body = http("POST", served.base + "/nassav/api/downloads/DEMO-004")
        assert code == 202, body
        job = body["data"]["task_id"]
        failed = rec.wait_type("task_failed", job, timeout_s=60)
        wait_for(lambda: followed_by_queue_status(old_messages(rec)), 10, 0.05, "the queue_status after the failure")
        assert failed["data"]["status"] == "failed" and "not found" in failed["data"]["error"]
        msgs = old_messages(rec)
        # It never took a download slot: queued and failed, never started.
        assert [m["type"] for m in msgs] == ["queue_status", "queue_status", "task_failed", "queue_status"]
        assert listed(msgs[-1]["data"], job) == ""
    finally:
        rec.close()


def test_a_batch_downloads_one_at_a_time_as_the_old_queue_showed(served, site):
    """Two downloads submitted together both run their metadata stages at once (nassav shows
    both running), but only the one holding the download slot is active for the old client;
    the other is pending until the first ends, then it starts."""
    site.set_faults(latency_ms=300)
    rec = EventRecorder(served.ws + "/nassav/ws/tasks/")
    try:
        rec.wait_type("queue_status", timeout_s=10)
        code, body = http("POST", served.base + "/nassav/api/downloads/batch_submit", {"avids": ["DEMO-005", "DEMO-006"]})
        assert code == 200 and [x["code"] for x in body["data"]["results"]] == [202, 202], body
        jobs = [x["task_id"] for x in body["data"]["results"]]
        for job in jobs:
            rec.wait_type("task_completed", job, timeout_s=120)
        wait_for(lambda: followed_by_queue_status(old_messages(rec)), 10, 0.05, "the queue_status after the end")
        msgs = old_messages(rec)
        statuses = [m["data"] for m in msgs if m["type"] == "queue_status"]
        assert all(q["active_count"] <= 1 and len(q["active_tasks"]) == q["active_count"] for q in statuses)
        assert any(q["active_count"] == 1 and q["pending_count"] == 1 for q in statuses), statuses
        order = [(m["type"], m["data"]["task_id"]) for m in msgs if m["type"] in TASK_EVENTS]
        first, second = (jobs if order[0][1] == jobs[0] else jobs[::-1])
        assert order == [("task_started", first), ("task_completed", first),
                         ("task_started", second), ("task_completed", second)], order
    finally:
        rec.close()


# -- the socket's own behaviour, on a gateway alone -------------------------------------------

def _recv(ws, timeout_s: float = 5) -> dict:
    while True:
        m = json.loads(ws.recv(timeout=timeout_s))
        if m["type"] != "ping":
            return m


def test_the_clients_requests_and_nassavs_own_events(tmp_path, r, redis_url):
    """``get_queue_status`` is answered in the old shape, bad JSON gets an ``error`` and the
    connection stays; nassav's stage events and metadata jobs never reach this socket."""
    from websockets.sync.client import connect

    from pipeline import events as ev, jobs as jobstates
    from pipeline.events import Events
    from tests.live_server import live_gateway, wait_subscribers

    with live_gateway(tmp_path / "data", redis_url) as gw, connect(gw.ws + "/nassav/ws/tasks/") as ws:
        first = _recv(ws)
        assert first["type"] == "queue_status" and QUEUE_KEYS <= set(first["data"])
        wait_subscribers(gw, 1)
        ws.send("{not json")
        assert _recv(ws) == {"type": "error", "message": "invalid JSON"}
        ws.send(json.dumps({"action": "ping"}))
        assert _recv(ws)["type"] == "pong"
        events, jobs = Events(r), jobstates.Jobs(r)
        meta = jobs.submit("ABC-020", "metadata")
        events.emit(ev.TASK_STARTED, avid="ABC-020", job_id=meta.job_id, stage="resolve", data={"kind": "metadata"})
        events.emit(ev.STAGE_FINISHED, avid="ABC-020", job_id=meta.job_id, stage="resolve")
        events.emit(ev.WARNING, avid="", job_id="", stage="cookie", data={"message": "no cookie"})
        jobs.finish(meta.job_id, "ABC-020", jobstates.COMPLETED, stage="cover")
        dl = jobs.submit("ABC-021", "download")  # its ``queued`` event: the queue changed
        got = _recv(ws)
        assert got["type"] == "queue_status", got
        assert [t["task_id"] for t in got["data"]["pending_tasks"]] == [dl.job_id]
        ws.send(json.dumps({"action": "get_queue_status"}))
        assert _recv(ws) == got


def test_a_stalled_tab_never_holds_up_the_relay(tmp_path, r, redis_url, monkeypatch):
    """A tab that stops reading is dropped once too far behind (close 1013, the old client
    reconnects); meanwhile nassav's own socket gets every event."""
    import socket

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    import gateway.ws
    from pipeline import events as ev
    from tests.live_server import live_gateway, wait_subscribers

    monkeypatch.setattr(gateway.ws, "MAX_PENDING_EVENTS", 500)
    with live_gateway(tmp_path / "data", redis_url) as gw:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow link: a small window
        sock.connect(("127.0.0.1", gw.port))
        with connect(gw.ws + "/nassav/ws/tasks/", sock=sock, compression=None, max_queue=1) as stalled:
            assert _recv(stalled)["type"] == "queue_status"
            wait_subscribers(gw, 1)
            (tab,) = gw.st.relay.subs
            # The server's end of the link too (the kernel would otherwise absorb megabytes).
            [server_side] = [c.transport.get_extra_info("socket") for c in gw.server.server_state.connections
                             if c.transport.get_extra_info("peername") == sock.getsockname()]
            server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            with connect(gw.ws + "/ws/tasks/") as own:
                assert _recv(own)["type"] == "queue_status"
                wait_subscribers(gw, 2)
                ids = []
                for chunk in range(20):
                    pipe = r.pipeline(transaction=False)
                    for i in range(500):
                        pipe.xadd(ev.STREAM, ev.encode(ev.PROGRESS, avid="ABC-030", job_id="stall", stage="download",
                                                       data={"percent": (chunk * 500 + i) / 100, "speed": "1 MB/s"}))
                    ids += pipe.execute()
                    time.sleep(0.02)
                seen = [_recv(own, 10)["id"] for _ in ids]
                assert seen == ids
            wait_for(lambda: tab.overflowed and tab not in gw.st.relay.subs, 10, 0.05, "the stalled tab to be dropped")
            # Reading again, the tab gets what was sent, then the error and the close.
            last = None
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    last = _recv(stalled, 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert last is not None and last["type"] == "error"
