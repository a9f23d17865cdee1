"""Several gateway processes on one port (``gateway.processes``, ``nassav serve --processes``):
the setting, the index keeper's lease on the real Redis, and ``nassav serve --processes 2`` as
real processes (events and resume by id on either process, one index keeper, a SIGKILLed
keeper replaced within the lease TTL, SIGTERM stops the whole group)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from gateway.cli.main import main as cli_main
from gateway.lease import Lease
from gateway.projection import METRICS_KEY
from gateway.relay import TIMEOUT, Relay
from pipeline import events as ev
from pipeline.config import load, with_processes
from pipeline.errors import ConfigError
from pipeline.redis_client import DECODED
from tests.conftest import ROOT, free_port, group_alive, stop_group, wait_for
from tests.api_helpers import put_resource
from tests.e2e_helpers import http as call
from tests.live_server import SSE, live_gateway

TTL_S = 2.0


# -- the setting ---------------------------------------------------------------------------

def test_processes_setting_is_validated(tmp_path):
    assert load(None, {}, data_dir=str(tmp_path)).gateway.processes == 1
    assert load(None, {}, data_dir=str(tmp_path), gateway={"processes": 4}).gateway.processes == 4
    for bad in (0, 65, "2", 1.5, True):
        with pytest.raises(ConfigError, match="gateway.processes"):
            load(None, {}, data_dir=str(tmp_path), gateway={"processes": bad})
    with pytest.raises(ConfigError, match="index_lease_ttl_s"):
        load(None, {}, data_dir=str(tmp_path), gateway={"index_lease_ttl_s": 0.5})
    cfg = load(None, {}, data_dir=str(tmp_path))
    assert with_processes(cfg, 3).gateway.processes == 3
    with pytest.raises(ConfigError, match="an integer from 1 to 64"):
        with_processes(cfg, 0)


def test_cli_refuses_a_bad_processes_flag(tmp_path, capsys):
    assert cli_main(["serve", "--data-dir", str(tmp_path), "--processes", "0"]) == 2
    assert "gateway.processes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["serve", "--data-dir", str(tmp_path), "--processes", "two"])
    assert e.value.code == 2


# -- the lease -----------------------------------------------------------------------------

def test_lease_one_holder_renewal_and_expiry(redis_url, r):
    async def go():
        a_client, b_client = (aioredis.Redis.from_url(redis_url, **DECODED) for _ in range(2))
        try:
            a = Lease(a_client, "t", ttl_ms=400)
            b = Lease(b_client, "t", ttl_ms=400)
            assert await a.try_acquire()
            assert not await b.try_acquire()
            assert await a.try_acquire()  # the holder keeps it
            assert not await b.release()  # only the holder releases
            assert await a.holder() == a.token
            for _ in range(4):  # renewed, it outlives its TTL
                await asyncio.sleep(0.15)
                assert await a.renew()
            assert not await b.try_acquire()
            await asyncio.sleep(0.6)  # a holder that stops renewing loses it within the TTL
            assert await b.try_acquire()
            assert not await a.renew()
            assert await b.release()
            assert await a.holder() is None
        finally:
            await a_client.aclose()
            await b_client.aclose()
    asyncio.run(go())


# -- the relay every process runs -------------------------------------------------------------

def test_an_idle_relay_skips_to_the_end_and_a_new_subscriber_misses_nothing(redis_url, r):
    """With no subscriber the relay jumps to the stream's end instead of reading every event;
    a subscriber arriving afterwards gets exactly the events after it subscribed."""
    async def go():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        relay = Relay(client)
        await relay.start()
        try:
            ids = [r.xadd(ev.STREAM, ev.encode("warning", avid="ABC-123", job_id="j", data={"n": n}))
                   for n in range(200)]
            for _ in range(200):
                if relay.last_id == ids[-1]:
                    break
                await asyncio.sleep(0.02)
            assert relay.last_id == ids[-1]
            sub = relay.subscribe()
            for n in range(200, 205):
                r.xadd(ev.STREAM, ev.encode("warning", avid="ABC-123", job_id="j", data={"n": n}))
            got = []
            while len(got) < 5:
                batch = await sub.get(5)
                assert batch is not TIMEOUT and batch is not None
                got += [e.data["n"] for e in batch.events]
            assert got == [200, 201, 202, 203, 204]
        finally:
            await relay.stop()
            await client.aclose()
    asyncio.run(go())


# -- two gateway apps in one test process (the keeper's election and hand-over) -------------

def test_two_apps_elect_one_keeper_and_hand_over_on_stop(tmp_path, redis_url, r):
    data = tmp_path / "data"
    opts = {"gateway": {"processes": 2, "index_lease_ttl_s": TTL_S}}
    with live_gateway(data, redis_url, **opts) as one:
        with live_gateway(data, redis_url, **opts) as two:
            roles = sorted([one.st.index_role, two.st.index_role])
            assert roles == ["keeper", "reader"]
            keeper, reader = (one, two) if one.st.index_role == "keeper" else (two, one)
            assert reader.st.projection is None and keeper.st.projection is not None
            # The keeper projects an event; the reader serves what it wrote.
            put_resource(data, "MPR-001", title="Seen By Both")
            r.xadd(ev.STREAM, ev.encode(ev.STAGE_FINISHED, avid="MPR-001", job_id="j0", stage="scrape"))
            wait_for(lambda: call("GET", reader.base + "/api/resources/?search=MPR-001")[1]["pagination"]["total"] == 1,
                     10, 0.05, "the reader to list what the keeper indexed")
            # A user's change made through the reader lands in the one index file.
            code, body = call("PATCH", reader.base + "/api/resource/MPR-001/status", {"watched": True})
            assert code == 200, body
            assert keeper.st.index.get("MPR-001")["watched"]
        # ``two`` stopped: if it kept the index, ``one`` takes over within a third of the TTL.
        wait_for(lambda: one.st.index_role == "keeper", TTL_S + 2, 0.05, "the other app to keep the index")
        before = float(r.hget(METRICS_KEY, "jobs_submitted:download") or 0)
        r.xadd(ev.STREAM, ev.encode(ev.QUEUED, avid="ABC-123", job_id="j1", data={"kind": "download"}))
        wait_for(lambda: float(r.hget(METRICS_KEY, "jobs_submitted:download") or 0) == before + 1, 10, 0.05,
                 "the new keeper to project the event")


def test_a_keeper_that_loses_its_lease_stops_projecting_and_can_take_it_again(tmp_path, redis_url, r):
    opts = {"gateway": {"processes": 2, "index_lease_ttl_s": 1.0}}
    with live_gateway(tmp_path / "data", redis_url, **opts) as gw:
        assert gw.st.index_role == "keeper"
        key = gw.st.keeper.lease.key
        # Another process took the lease (as after a Redis outage longer than the TTL).
        r.set(key, "another-process", px=1500)
        wait_for(lambda: gw.st.index_role == "reader", 3, 0.05, "the keeper to notice it lost the lease")
        assert gw.st.projection is None
        # That holder never renews: the lease frees and this process keeps the index again.
        wait_for(lambda: gw.st.index_role == "keeper", 5, 0.05, "the lease to come back")
        assert r.get(key) == gw.st.keeper.lease.token
    assert r.get(key) is None  # released at shutdown: the next process need not wait out the TTL


# -- nassav serve --processes 2, as real processes -------------------------------------------

class Conn:
    """One keep-alive connection: every answer on it comes from the same gateway process."""

    def __init__(self, port: int):
        self.port = port
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def health(self) -> dict:
        self.http.request("GET", "/health")
        res = self.http.getresponse()
        body = json.loads(res.read())
        assert res.status == 200, body
        return body["data"]["gateway"]

    def close(self) -> None:
        self.http.close()


def conn_to(port: int, want, timeout_s: float = 20) -> tuple[Conn, dict]:
    """A new connection whose process satisfies ``want(health["gateway"])`` (the kernel picks
    the process of each new connection, so try until one fits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c = Conn(port)
        try:
            g = c.health()
        except (OSError, http.client.HTTPException, AssertionError):
            c.close()
            time.sleep(0.1)
            continue
        if want(g):
            return c, g
        c.close()
    raise AssertionError(f"no gateway process fitting the wish answered within {timeout_s} s")


def seen_processes(port: int, n: int, timeout_s: float = 30) -> dict[int, str]:
    """pid → index role of the processes answering, until ``n`` different ones have."""
    seen: dict[int, str] = {}

    def more() -> bool:
        c, g = conn_to(port, lambda g: True)
        c.close()
        seen[g["pid"]] = g["index"]
        return len(seen) >= n
    wait_for(more, timeout_s, 0, f"{n} different gateway processes to answer")
    return seen


@pytest.fixture
def two_processes(tmp_path, redis_url, r):
    port = free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "redis_url": redis_url,
                                   "gateway": {"index_lease_ttl_s": TTL_S}}))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "NASSAV_REDIS_URL", "NASSAV_DATA_DIR")}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg),
                             "--port", str(port), "--processes", "2"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, port, tmp_path / "serve.log"
    finally:
        stop_group(proc)
        log.close()


def test_serve_processes_share_events_resume_and_index(two_processes, r):
    proc, port, log_path = two_processes
    seen = seen_processes(port, 2)
    assert sorted(seen.values()) == ["keeper", "reader"], seen
    pid_a, pid_b = list(seen)

    # Process A streams two events; the client drops; process B resumes after the first.
    a, _ = conn_to(port, lambda g: g["pid"] == pid_a)
    stream = SSE(f"http://127.0.0.1:{port}", "/api/events", conn=a.http)
    assert stream.status == 200
    assert stream.events(1)[0]["data"]["type"] == "queue_status"
    for n in (1, 2):
        r.xadd(ev.STREAM, ev.encode("warning", avid="ABC-123", job_id="j1", data={"n": n}))
    first, second = stream.events(2)
    assert [m["data"]["data"]["n"] for m in (first, second)] == [1, 2]
    stream.close()
    r.xadd(ev.STREAM, ev.encode("warning", avid="ABC-123", job_id="j1", data={"n": 3}))
    b, _ = conn_to(port, lambda g: g["pid"] == pid_b)
    resumed = SSE(f"http://127.0.0.1:{port}", "/api/events", headers={"Last-Event-ID": first["id"]}, conn=b.http)
    got = [m for m in resumed.events(3) if m["data"]["type"] == "warning"][:2]
    assert [m["data"]["data"]["n"] for m in got] == [2, 3]
    assert got[0]["id"] == second["id"]
    resumed.close()

    # SIGKILL the keeper: another process keeps the index within the lease's TTL (+ a renewal).
    keeper = next(pid for pid, role in seen.items() if role == "keeper")
    os.kill(keeper, signal.SIGKILL)
    t0 = time.monotonic()
    _, g = conn_to(port, lambda g: g["index"] == "keeper" and g["pid"] != keeper, timeout_s=TTL_S * 4)
    took = time.monotonic() - t0
    assert took < TTL_S * 2, f"the take-over took {took:.1f} s"
    before = float(r.hget(METRICS_KEY, "jobs_submitted:download") or 0)
    r.xadd(ev.STREAM, ev.encode(ev.QUEUED, avid="DEF-456", job_id="j2", data={"kind": "download"}))
    wait_for(lambda: float(r.hget(METRICS_KEY, "jobs_submitted:download") or 0) == before + 1, 10, 0.05,
             "the new keeper to project the event")
    # The killed process was replaced: two processes answer again, exactly one keeps the index.
    wait_for(lambda: "exited" in log_path.read_text(errors="replace"), 10, 0.1, "the restart to be logged")
    again = seen_processes(port, 2)
    assert keeper not in again
    assert sorted(again.values()) == ["keeper", "reader"], again

    # SIGTERM to the parent alone stops every gateway process.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_for(lambda: not group_alive(proc.pid), 10, 0.1, "every gateway process to exit")
