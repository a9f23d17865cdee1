"""Scale-out: two metadata and two download workers as separate processes on one Redis.

Twenty AVIDs from the fixture site: every AVID completes exactly once, the two download
workers never download at the same time (proved from the events' timestamps), and both
metadata workers did work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from pipeline.events import Events
from tests.conftest import ROOT, free_port, stop_group, wait_for
from tests.e2e_helpers import http
from tools.fixture_site import FixtureSite, demo_avids

N = 20


def spawn(args, env, log):
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cluster(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=demo_avids(N), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data = tmp_path / "data"
    port = free_port()
    cfg = site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url,
                            extra={"workers": {"metadata_threads": 2}})
    env = dict(os.environ, NASSAV_REDIS_URL=redis_url)
    log = open(tmp_path / "cluster.log", "wb")
    common = ["--config", str(cfg), "--port", str(port)]
    procs = [spawn(["serve", *common], env, log)]
    procs += [spawn(["worker", "--queues", "metadata", *common], env, log) for _ in range(2)]
    procs += [spawn(["worker", "--queues", "download", *common], env, log) for _ in range(2)]
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                code, body = http("GET", base + "/health", timeout_s=2)
            except OSError:
                return False
            w = body["data"]["workers"]
            return code == 200 and w.get("metadata") == 2 and w.get("download") == 2
        wait_for(healthy, 60, 0.2, "gateway and four workers")
        yield base, data, tmp_path / "cluster.log"
    finally:
        for p in procs:
            stop_group(p)
        log.close()
        site.stop()


def test_twenty_avids_on_two_plus_two_workers(cluster, r):
    base, data, logfile = cluster
    avids = demo_avids(N)
    jobs = {}
    for a in avids:
        code, body = http("POST", f"{base}/api/downloads/{a}")
        assert code == 202, body
        jobs[body["data"]["job_id"]] = a

    events = Events(r)

    def all_done():
        finished = [e for e in events.after("0") if e.type in ("task_completed", "task_failed")]
        return finished if len(finished) >= N else None
    wait_for(all_done, 180, 0.5, f"{N} jobs to finish ({logfile})")
    evs = events.after("0", count=100_000)

    completed = Counter(e.avid for e in evs if e.type == "task_completed")
    assert not [e for e in evs if e.type == "task_failed"]
    assert completed == Counter(avids), "every AVID completes exactly once"
    downloads = Counter(e.avid for e in evs if e.type == "stage_finished" and e.stage == "download")
    assert downloads == Counter(avids), "every AVID is downloaded exactly once"
    for a in avids:
        assert (data / a / f"{a}.mp4").stat().st_size > 0

    # Download intervals, from each job's download stage_started to its stage_finished.
    start = {e.job_id: e.ts for e in evs if e.type == "stage_started" and e.stage == "download"}
    end = {e.job_id: e.ts for e in evs if e.type == "stage_finished" and e.stage == "download"}
    intervals = sorted((start[j], end[j]) for j in jobs)
    for (s1, e1), (s2, e2) in zip(intervals, intervals[1:]):
        assert s2 >= e1, f"two downloads overlapped: {s1:.3f}-{e1:.3f} and {s2:.3f}-{e2:.3f}"

    meta_workers = {e.data.get("worker") for e in evs if e.type == "stage_started" and e.stage == "resolve"}
    assert len(meta_workers) == 2, meta_workers
    dl_workers = Counter(e.data.get("worker") for e in evs if e.type == "stage_started" and e.stage == "download")
    assert len(dl_workers) >= 1 and sum(dl_workers.values()) == N
