"""Fixture CDN faults: errors, truncated bodies, stalls, a 10 s outage, a segment that never works.

Each transient fault is applied to one download in turn (one cluster: gateway, a metadata
and a download worker): the job completes with a correct MP4. A segment that always answers
500 fails its job with a reason that names the segment. Whatever happens, nothing is ever
written under a final name unless it is whole: ``{AVID}.mp4`` only when it decodes in full
and lasts the stream's duration, no temp file left beside it.
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.faults.conftest import Cluster, check_final_files, events, stray_temps, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite

DURATION_S = 8.0
PHASES = {
    # AVID: (fault knobs, what they stand for)
    "CDN-001": ({"error_rate": 0.3, "seed": 11}, "30 % of segment requests answer 500"),
    "CDN-002": ({"truncate_rate": 0.3, "seed": 12}, "30 % of segment bodies cut in half"),
    "CDN-003": ({"stall_rate": 0.2, "stall_s": 15, "seed": 13}, "20 % of segments stall 15 s mid-body"),
    "CDN-004": ({"outage_s": 10}, "every CDN request answers 503 for 10 s"),
}
BROKEN = "CDN-009"
# segment_retries 3 and 2 actor retries (product defaults: 5 and 3) keep the test short;
# stall_timeout_s 2 (default 30) so the stall watchdog cuts a 15 s stall.
CONFIG = {"download": {"segment_retries": 3, "max_retries": 2, "stall_timeout_s": 2}}


def _cluster(tmp_path, redis_url, titles, extra):
    site = FixtureSite.start(titles=titles, stream_kind="aes128", duration_s=DURATION_S, segment_s=1.0)
    c = Cluster(tmp_path, site, redis_url, extra=extra)
    c.serve()
    c.worker("metadata")
    c.worker("download")
    try:
        c.wait_healthy(metadata=1, download=1)
    except BaseException:
        c.stop()
        site.stop()
        raise
    return c


@pytest.fixture
def cluster(tmp_path, r, redis_url):
    c = _cluster(tmp_path, redis_url, list(PHASES), CONFIG)
    try:
        yield c
    finally:
        c.stop()
        c.site.stop()


def test_transient_cdn_faults_are_survived(cluster: Cluster, r: redis.Redis):
    site = cluster.site
    for avid, (knobs, what) in PHASES.items():
        site.reset()
        site.set_faults(**knobs)
        t0 = time.time()
        job = cluster.submit(avid)
        end = wait_terminal(r, [job], 90, f"{avid} ({what}) to end ({cluster.log_path})")[job]
        took = end.ts - t0
        assert not stray_temps(cluster.data, avid), f"{avid}: temp files left after {what}"
        names = check_final_files(cluster.data, avid, expected_duration_s=DURATION_S)
        if end.type != "task_completed":
            assert end.data.get("message"), f"{avid} failed without a reason"
            assert f"{avid}.mp4" not in names
            pytest.fail(f"{avid} ({what}) failed: {end.data.get('message')}")
        assert f"{avid}.mp4" in names
        stats = site.stats()
        if "stall_rate" in knobs:
            assert stats["segment_requests"][avid] > site.stream(avid).segments, \
                "no stalled transfer was cut and retried"
        warnings = [e for e in events(r) if e.job_id == job and e.type == "warning"]
        extra = {}
        if "outage_s" in knobs:
            extra["recover_s"] = round(max(0.0, end.ts - (t0 + knobs["outage_s"])), 1)
        record(f"CDN fault: {what}", avid=avid, outcome="completed", total_s=round(took, 1),
               segment_requests=stats["segment_requests"].get(avid, 0),
               statuses=stats["status"], stage_retries=len(warnings), data_lost="none", **extra)


@pytest.fixture
def broken_cluster(tmp_path, r, redis_url):
    c = _cluster(tmp_path, redis_url, [BROKEN],
                 {"download": {"segment_retries": 2, "max_retries": 0, "stall_timeout_s": 2}})
    try:
        yield c
    finally:
        c.stop()
        c.site.stop()


def test_segment_that_never_works_fails_with_reason(broken_cluster: Cluster, r: redis.Redis):
    c = broken_cluster
    c.site.set_faults(fail_segments=[3])
    t0 = time.time()
    job = c.submit(BROKEN)
    end = wait_terminal(r, [job], 60, f"{BROKEN} to fail ({c.log_path})")[job]
    assert end.type == "task_failed", end.data
    message = end.data.get("message", "")
    assert "segment 3" in message and "500" in message, message
    assert not (c.data / BROKEN / f"{BROKEN}.mp4").exists(), "a failed download left a final MP4"
    assert not stray_temps(c.data, BROKEN)
    check_final_files(c.data, BROKEN)
    parts = c.data / ".parts" / BROKEN
    assert parts.is_dir(), "the fetched segments are kept for a later resume"
    # The claim is released: the AVID can be submitted again.
    c.site.set_faults(fail_segments=[])
    again = c.submit(BROKEN)
    end2 = wait_terminal(r, [again], 60, f"{BROKEN} to complete once the CDN heals")[again]
    assert end2.type == "task_completed", end2.data
    assert f"{BROKEN}.mp4" in check_final_files(c.data, BROKEN, expected_duration_s=DURATION_S)
    record("CDN fault: a segment always answers 500", avid=BROKEN, outcome="failed with reason",
           reason=message[:160], fail_s=round(end.ts - t0, 1), then="completed after the CDN healed",
           data_lost="none")
