"""Restart Redis (AOF on) with jobs queued and one downloading.

A redis-server of the test's own (a free port, AOF, never the shared one) is stopped for
~8 s while one job downloads and three wait. While it is down the gateway answers 503 with
a message that names Redis, quickly (no hang, no 500). When it is back the same gateway
process answers again without a restart, the workers reconnect (fresh heartbeats) and every
job accepted before the outage completes, as does one submitted after it.
"""

from __future__ import annotations

import time

import pytest

from pipeline.redis_client import connect
from tests.conftest import wait_for
from tests.e2e_helpers import http
from tests.faults.conftest import Cluster, RedisServer, check_final_files, events, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite

AVIDS = ["RST-001", "RST-002", "RST-003", "RST-004"]
LATE = "RST-005"
DURATION_S = 8.0
DOWN_S = 8.0


@pytest.fixture
def setup(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    site = FixtureSite.start(titles=AVIDS + [LATE], stream_kind="clear", duration_s=DURATION_S, segment_s=1.0)
    c = Cluster(tmp_path, site, server.url)
    client = connect(server.url, socket_timeout=5)
    try:
        c.serve()
        c.worker("metadata")
        c.worker("download")
        c.wait_healthy(metadata=1, download=1)
        yield c, server, client
    finally:
        c.stop()
        site.stop()
        client.close()
        server.stop()


def _timed(method: str, url: str) -> tuple[int, dict, float]:
    t0 = time.monotonic()
    code, body = http(method, url, timeout_s=15)
    return code, body, time.monotonic() - t0


def test_redis_restart_with_jobs_queued_and_running(setup):
    cluster, server, r = setup
    site = cluster.site
    seg = site.stream(AVIDS[0])
    # Each segment takes ~3 s on its own connection: one download lasts ~3 s, four ~12 s.
    site.set_faults(bandwidth_bytes_per_s=int(seg.total_bytes / seg.segments / 3))
    jobs = {cluster.submit(a): a for a in AVIDS}

    def downloading():
        return any(e.type == "progress_update" for e in events(r))
    wait_for(downloading, 60, 0.1, f"the first download to start ({cluster.log_path})")
    gateway_pid = cluster.procs["gateway"].pid

    running = [e.job_id for e in events(r) if e.type == "progress_update"][-1]
    server.stop()
    down_at = time.monotonic()
    answers = []
    for method, path in (("GET", "/api/tasks/queue/status"), ("POST", f"/api/downloads/{LATE}"),
                         ("GET", "/health")):
        code, body, took = _timed(method, cluster.base + path)
        answers.append((path, code, took))
        assert code == 503, (path, code, body)
        assert "redis" in body.get("message", "").lower(), body
        assert took < 10, f"{path} took {took:.1f} s to answer while Redis was down"
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - down_at)))

    server.start()
    up_at = time.monotonic()

    def gateway_back():
        code, body = http("GET", cluster.base + "/api/tasks/queue/status", timeout_s=5)
        return code == 200
    wait_for(gateway_back, 30, 0.1, "the gateway to answer again")
    gateway_s = time.monotonic() - up_at
    assert cluster.procs["gateway"].poll() is None and cluster.procs["gateway"].pid == gateway_pid

    def workers_back():
        _, body = http("GET", cluster.base + "/health", timeout_s=5)
        w = (body.get("data") or {}).get("workers") or {}
        fresh = [v for v in r.hgetall("nassav:workers").values()]
        import json
        seen = [json.loads(v)["last_seen"] for v in fresh]
        return w.get("metadata") == 1 and w.get("download") == 1 and len(seen) == 2 \
            and min(seen) > time.time() - (time.monotonic() - up_at)
    wait_for(workers_back, 30, 0.2, "both workers to beat again")
    workers_s = time.monotonic() - up_at

    late_job = cluster.submit(LATE)
    ends = wait_terminal(r, list(jobs) + [late_job], 120, f"every job to end ({cluster.log_path})")
    all_done_s = time.monotonic() - up_at
    up_wall = time.time() - all_done_s
    interrupted_s = ends[running].ts - up_wall  # the job that was downloading when Redis stopped
    failed = {jobs.get(j, LATE): e.data.get("message") for j, e in ends.items() if e.type != "task_completed"}
    assert not failed, f"jobs did not complete after the restart: {failed}\n{cluster.output()}"
    evs = events(r)
    for j, a in list(jobs.items()) + [(late_job, LATE)]:
        assert sum(1 for e in evs if e.job_id == j and e.type == "task_completed") == 1, a
        assert f"{a}.mp4" in check_final_files(cluster.data, a, expected_duration_s=DURATION_S)
    record("Redis restart (AOF) with jobs queued and running", down_s=DOWN_S,
           answers_while_down=[f"{p} {c} in {t:.2f}s" for p, c, t in answers],
           gateway_back_s=round(gateway_s, 1), workers_back_s=round(workers_s, 1),
           interrupted_job_done_s=round(interrupted_s, 1),
           recover_s=round(max(gateway_s, workers_s, interrupted_s), 1), all_jobs_done_s=round(all_done_s, 1),
           jobs=len(jobs) + 1, data_lost="none")
