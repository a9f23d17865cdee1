"""SIGKILL a metadata worker in the middle of a stage, with a second metadata worker running.

The top source (MissAV) holds every request until the client's 3 s timeout, so ``resolve``
takes several seconds; the worker running it is killed during that time. The message comes
back to the other metadata worker, which runs ``resolve`` again (the next source has the
title) and the job goes on to complete exactly once: one ``task_completed``, each later stage
finished once.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from tests.conftest import wait_for
from tests.faults.conftest import Cluster, check_final_files, events, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite

AVID = "KILL-002"


@pytest.fixture
def cluster(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=[AVID], stream_kind="clear", duration_s=4.0, segment_s=1.0)
    site.set_faults(timeout_s=30)
    site.set_scenario("missav", "timeout")
    c = Cluster(tmp_path, site, redis_url, extra={"http": {"timeout_s": 3, "retries": 1}})
    try:
        c.serve()
        c.worker("metadata", "meta-a")
        c.worker("metadata", "meta-b")
        c.worker("download")
        c.wait_healthy(metadata=2, download=1)
        yield c
    finally:
        c.stop()
        site.stop()


def test_sigkill_metadata_worker_mid_stage(cluster: Cluster, r: redis.Redis):
    job = cluster.submit(AVID)

    def resolving():
        return next((e for e in events(r) if e.job_id == job and e.type == "stage_started"
                     and e.stage == "resolve"), None)
    started = wait_for(resolving, 30, 0.05, "resolve to start")
    victim = cluster.name_of(started.data["worker"])
    survivor = "meta-b" if victim == "meta-a" else "meta-a"
    time.sleep(1.0)  # well inside the ~6 s the timing-out source holds the stage
    assert not [e for e in events(r) if e.job_id == job and e.type == "stage_finished"], \
        "resolve finished before the kill; the stage is not slow enough"
    kill_wall = time.time()
    cluster.kill(victim)

    end = wait_terminal(r, [job], 90, f"the job to end ({cluster.log_path})")[job]
    evs = [e for e in events(r) if e.job_id == job]
    assert end.type == "task_completed", (end.data, cluster.output())

    again = [e for e in evs if e.type == "stage_started" and e.stage == "resolve" and e.ts > kill_wall]
    assert again and again[0].data["worker"] == cluster.worker_id(survivor), \
        f"resolve was not redelivered to {survivor}: {[(e.type, e.stage, e.data.get('worker')) for e in evs]}"
    redelivery_s = again[0].ts - kill_wall
    assert redelivery_s < 30, f"redelivered after {redelivery_s:.1f} s"

    assert Counter(e.type for e in evs)["task_completed"] == 1
    assert not [e for e in evs if e.type == "task_failed"]
    finished = Counter(e.stage for e in evs if e.type == "stage_finished")
    assert finished == Counter({"resolve": 1, "scrape": 1, "cover": 1, "download": 1}), finished
    assert f"{AVID}.mp4" in check_final_files(cluster.data, AVID, expected_duration_s=4.0)
    record("SIGKILL metadata worker mid-stage", redelivery_s=round(redelivery_s, 1),
           recover_s=round(redelivery_s, 1), completions=1, data_lost="none")
