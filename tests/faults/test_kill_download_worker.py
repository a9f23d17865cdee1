"""SIGKILL the download worker half-way through a download.

Two download workers run; the one downloading is killed (with its ffmpeg) at ≥ 50 %. The
other gets the redelivered message within 30 s, waits for the dead worker's mutex slot to
expire (≤ its TTL), resumes from the part directory (fewer segments fetched than the stream
has, proved by the fixture CDN's counters) and writes an MP4 that decodes in full and lasts
the stream's duration ± 2 %. The job completes exactly once.
"""

from __future__ import annotations

import time

import pytest
import redis

from pipeline.mutex import PREFIX as MUTEX_PREFIX
from tests.conftest import wait_for
from tests.faults.conftest import Cluster, check_final_files, events, stray_temps, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite

AVID = "KILL-001"
DURATION_S = 20.0
TTL_MS = 30_000  # the product's default download.mutex_ttl_ms


@pytest.fixture
def cluster(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=[AVID], stream_kind="clear", duration_s=DURATION_S, segment_s=1.0)
    c = Cluster(tmp_path, site, redis_url, extra={
        "download": {"concurrency": 2, "mutex_ttl_ms": TTL_MS, "max_retries": 1}})
    try:
        c.serve()
        c.worker("metadata")
        c.worker("download", "dl-a")
        c.worker("download", "dl-b")
        c.wait_healthy(metadata=1, download=2)
        yield c
    finally:
        c.stop()
        site.stop()


def test_sigkill_download_worker_at_half(cluster: Cluster, r: redis.Redis):
    site = cluster.site
    seg_bytes = site.stream(AVID).total_bytes / site.stream(AVID).segments
    # ~1 segment per second per connection, two connections: ~10 s for the whole stream.
    site.set_faults(bandwidth_bytes_per_s=int(seg_bytes))
    job = cluster.submit(AVID)

    def half():
        started = [e for e in events(r) if e.job_id == job and e.type == "stage_started"
                   and e.stage == "download"]
        prog = [e for e in events(r) if e.job_id == job and e.type == "progress_update"
                and float(e.data.get("percent", 0)) >= 50]
        return (started[0], prog[0]) if started and prog else None
    started, prog = wait_for(half, 60, 0.1, f"the download to reach 50 % ({cluster.log_path})")
    victim = cluster.name_of(started.data["worker"])
    assert victim in ("dl-a", "dl-b"), started.data
    survivor = "dl-b" if victim == "dl-a" else "dl-a"
    token = r.get(f"{MUTEX_PREFIX}download:0")
    assert token, "the downloading worker holds the mutex slot"

    kill_wall = time.time()
    cluster.kill(victim)
    segs_total = site.stream(AVID).segments
    before = sum(site.stats()["segments"].get(AVID, {}).values())
    percent_at_kill = float(prog.data["percent"])

    # The mutex: the dead worker's slot must free within its TTL.
    def slot_freed():
        return r.get(f"{MUTEX_PREFIX}download:0") != token
    wait_for(slot_freed, TTL_MS / 1000 + 5, 0.1, "the dead worker's mutex slot to expire")
    slot_free_s = time.time() - kill_wall

    end = wait_terminal(r, [job], 90, f"the job to end after the kill ({cluster.log_path})")[job]
    evs = [e for e in events(r) if e.job_id == job]
    assert end.type == "task_completed", (end.data, cluster.output())

    by_survivor = [e for e in evs if e.ts > kill_wall and e.data.get("worker") == cluster.worker_id(survivor)
                   and e.stage == "download" and e.type == "stage_started"]
    waits = [e for e in evs if e.ts > kill_wall and e.type == "stage_started" and e.stage == "download-wait"]
    assert by_survivor, f"{survivor} never started the download: {[(e.type, e.stage) for e in evs]}"
    first_sign = min([by_survivor[0].ts] + [w.ts for w in waits])
    redelivery_s = first_sign - kill_wall
    resumed_s = by_survivor[0].ts - kill_wall
    assert redelivery_s < 30, f"redelivered after {redelivery_s:.1f} s (limit 30 s)"
    assert slot_free_s <= TTL_MS / 1000 + 1, f"slot freed after {slot_free_s:.1f} s (TTL {TTL_MS / 1000:.0f} s)"

    finished = [e for e in evs if e.type == "stage_finished" and e.stage == "download"]
    assert len(finished) == 1 and finished[0].data["worker"] == cluster.worker_id(survivor)
    fetched_again = int(finished[0].data["segments_fetched"])
    after = sum(site.stats()["segments"][AVID].values()) - before
    assert fetched_again < segs_total, f"no resume: fetched {fetched_again} of {segs_total} segments again"
    assert after < segs_total, f"the CDN served {after} segment requests after the kill (of {segs_total})"

    assert sum(1 for e in evs if e.type == "task_completed") == 1
    names = check_final_files(cluster.data, AVID, expected_duration_s=DURATION_S)
    assert f"{AVID}.mp4" in names
    assert not stray_temps(cluster.data, AVID)
    assert not (cluster.data / ".parts" / AVID).exists(), "parts are removed after success"
    record("SIGKILL download worker at ~50 %", percent_at_kill=percent_at_kill,
           redelivery_s=round(redelivery_s, 1), slot_free_s=round(slot_free_s, 1),
           resumed_s=round(resumed_s, 1), recover_s=round(resumed_s, 1),
           segments=segs_total, fetched_after_kill=fetched_again, cdn_requests_after_kill=after,
           data_lost="none")
