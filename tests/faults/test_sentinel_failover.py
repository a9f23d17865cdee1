"""SIGKILL the Redis master under a Sentinel set mid-run.

A master, a replica and three Sentinels on loopback (``tests/sentinel_helpers.py``); the
gateway and 2 metadata + 2 download workers all get the ``redis+sentinel://`` URL. Twenty
AVIDs are accepted (each confirmed on the replica before its 202, ``gateway/replication.py``),
then the master is SIGKILLed while a download runs. The Sentinels promote the replica; while
no master answers, the gateway answers 503 with a message naming Redis (never a 500, never a
hang), and 200 again once it has reconnected, without a restart. The workers ride through:
every accepted job completes, each AVID exactly once, every MP4 decodes in full. The killed
server comes back as a replica of the new master (what a service manager restarting it does).

The mutex across a failover: a slot is a key with a TTL that its holder renews every
``ttl/3``; the promoted replica holds the slot as of the last renewal it received. Two
downloads can overlap only when the failover outlasts what was left of the TTL: the slot
expires on the new master, another worker takes it at once, and the old holder learns it at
its next renewal (at most one interval later) and stops, keeping its parts for the retry.
The test measures that overlap from the events' timestamps (download ``stage_started`` to
the end of the same attempt: ``stage_finished`` or the retry's ``warning``).
"""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.redis_client import connect
from tests.conftest import wait_for
from tests.e2e_helpers import http
from tests.faults.conftest import Cluster, check_final_files, events, wait_terminal
from tests.figures import record
from tests.sentinel_helpers import SentinelSet
from tools.fixture_site import FixtureSite, demo_avids

N = 20
DURATION_S = 4.0
TTL_MS = 3000
RENEW_S = TTL_MS / 3000
# The Sentinels call the master down after 3.5 s without an answer (production: 30 s), so the
# failover outlasts the 3 s slot TTL: the running download's slot vanishes, the case worth
# measuring (with a failover shorter than what is left of the TTL the holder keeps its slot).
DOWN_AFTER_MS = 3500
# How long a stopping download takes to notice the lost slot and emit its warning: the
# cancel watch polls, the segment fetches in flight end, the retry is recorded.
STOP_SLACK_S = 3.0


@pytest.fixture
def setup(tmp_path):
    sentinels = SentinelSet(tmp_path / "sentinel", password="s3cret-pw", down_after_ms=DOWN_AFTER_MS)
    site = None
    c = None
    client = None
    try:
        sentinels.start()
        site = FixtureSite.start(titles=demo_avids(N), stream_kind="clear", duration_s=DURATION_S, segment_s=1.0)
        c = Cluster(tmp_path, site, sentinels.url, extra={
            "workers": {"metadata_threads": 2},
            "download": {"concurrency": 2, "mutex_ttl_ms": TTL_MS, "max_retries": 5}})
        client = connect(sentinels.url, socket_timeout=5, socket_connect_timeout=2)
        c.serve()
        c.worker("metadata", "meta-a")
        c.worker("metadata", "meta-b")
        c.worker("download", "dl-a")
        c.worker("download", "dl-b")
        c.wait_healthy(metadata=2, download=2, timeout_s=90)
        yield c, sentinels, client
    finally:
        if c is not None:
            c.stop()
        if site is not None:
            site.stop()
        if client is not None:
            client.close()
        sentinels.stop()


class Prober(threading.Thread):
    """Asks the gateway every 0.1 s; keeps (wall time, code, message, seconds taken)."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base = base
        self.answers: list[tuple[float, int, str, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.time()
            try:
                code, body = http("GET", self.base + "/api/tasks/queue/status", timeout_s=15)
                message = (body or {}).get("message", "")
            except OSError as e:
                code, message = 0, f"no answer: {e}"
            self.answers.append((t0, code, message, time.time() - t0))
            self.halt.wait(0.1)


def download_attempts(evs, data_dir) -> list[tuple[float, float, str, str]]:
    """(start, end, job, how it ended) of every download attempt, from the events.

    An attempt starts at its download ``stage_started`` and ends at its ``stage_finished``,
    its retry ``warning`` (a lost slot) or ``task_failed``. An attempt whose end event was
    refused by the outage (the stage then waits for Redis and is sent again) ends before the
    job's next download attempt starts, or, when the re-sent stage found the video done, when
    its MP4 was written (its mtime) — the earliest bound the record gives.
    """
    out = []
    by_job: dict[str, list] = {}
    for e in evs:
        by_job.setdefault(e.job_id, []).append(e)
    for job, items in by_job.items():
        start = None
        for e in items:
            if e.stage == "download" and e.type == "stage_started":
                if start is not None:
                    out.append((start.ts, e.ts, job, "sent again"))
                start = e
            elif start is not None and (e.type == "task_failed" or (
                    e.stage == "download" and e.type in ("stage_finished", "warning"))):
                out.append((start.ts, e.ts, job, e.type))
                start = None
            elif start is not None and e.type == "task_completed":
                mp4 = data_dir / e.avid / f"{e.avid}.mp4"
                mtime = mp4.stat().st_mtime if mp4.exists() else e.ts
                out.append((start.ts, min(e.ts, max(mtime, start.ts)), job, "video written"))
                start = None
    return out


def test_sentinel_failover_mid_run(setup):
    cluster, s, r = setup
    site = cluster.site
    seg = site.stream(demo_avids(1)[0])
    # ~1 s per segment and connection: a download takes ~2 s, twenty ~40 s one after another.
    site.set_faults(bandwidth_bytes_per_s=int(seg.total_bytes / seg.segments))
    jobs = {}
    for a in demo_avids(N):
        jobs[cluster.submit(a)] = a
    assert s.direct("b").get(f"nassav:claim:{demo_avids(N)[-1]}"), "the last 202 is on the replica"

    def mid_run():
        evs = events(r)
        done = sum(1 for e in evs if e.type == "stage_finished" and e.stage == "download")
        if done < 3:
            return None
        ends = {e.job_id for e in evs if e.stage == "download" and e.type in ("stage_finished", "warning")}
        running = [e for e in evs if e.type == "progress_update" and e.job_id not in ends]
        return running[-1] if running else None
    wait_for(mid_run, 180, 0.1, f"three downloads done and one running ({cluster.log_path})")

    # Slow the CDN to ~4 s per segment, then kill the master as the next download starts:
    # it lasts ~8 s, longer than the failover, so its slot's TTL runs out meanwhile.
    site.set_faults(bandwidth_bytes_per_s=int(seg.total_bytes / seg.segments / 4))
    before = {e.job_id for e in events(r) if e.stage == "download" and e.type == "stage_started"}

    def next_download():
        return [e for e in events(r) if e.stage == "download" and e.type == "stage_started"
                and e.job_id not in before]
    victim = wait_for(next_download, 60, 0.05, "the next download to start")[0]
    prober = Prober(cluster.base)
    prober.start()
    time.sleep(0.5)
    kill_wall = s.kill("a")
    wait_for(lambda: s.master_name() == "b", 90, 0.1, "the Sentinels to promote the replica")
    failover_s = time.time() - kill_wall

    def gateway_back():
        return any(t > kill_wall and code == 200 for t, code, _, _ in prober.answers)
    wait_for(gateway_back, 60, 0.1, "the gateway to answer 200 again")
    back_wall = min(t for t, code, _, _ in prober.answers if t > kill_wall and code == 200)
    time.sleep(3)  # keep probing a little: no 503 may follow the first 200
    prober.halt.set()
    prober.join(20)
    s.start_server("a", replica_of="b")  # the killed server returns, as a replica
    site.set_faults(bandwidth_bytes_per_s=int(seg.total_bytes / seg.segments))

    after = [a for a in prober.answers if a[0] > kill_wall]
    bad = [a for a in after if a[1] not in (200, 503)]
    assert not bad, f"answers other than 200/503 during the failover: {bad}"
    for t, code, message, took in after:
        if code == 503:
            assert "redis" in message.lower(), message
            assert t < back_wall, f"a 503 after the gateway was back: {message}"
        assert took < 15, f"an answer took {took:.1f} s"
    refusals = [a for a in after if a[1] == 503]
    assert cluster.procs["gateway"].poll() is None, "the gateway rode through without a restart"

    ends = wait_terminal(r, jobs, 420, f"every job to end ({cluster.log_path})")
    failed = {jobs[j]: e.data.get("message") for j, e in ends.items() if e.type != "task_completed"}
    assert not failed, f"jobs failed across the failover: {failed}\n{cluster.output()}"
    evs = events(r)
    completed = [e.avid for e in evs if e.type == "task_completed"]
    assert sorted(completed) == sorted(demo_avids(N)), "every AVID completes exactly once"
    for a in demo_avids(N):
        assert f"{a}.mp4" in check_final_files(cluster.data, a, expected_duration_s=DURATION_S)
    for name, p in cluster.procs.items():
        assert p.poll() is None, f"{name} died during the failover:\n{cluster.output()}"

    attempts = sorted(download_attempts(evs, cluster.data))
    overlap = 0.0
    for i, (s1, e1, j1, _) in enumerate(attempts):
        for s2, e2, j2, _ in attempts[i + 1:]:
            if s2 >= e1:
                break
            overlap = max(overlap, min(e1, e2) - s2)
    lost_slots = [j for _, _, j, how in attempts if how == "warning"]
    victim_ends = [how for _, _, j, how in attempts if j == victim.job_id]
    assert overlap <= RENEW_S + STOP_SLACK_S, \
        f"two downloads overlapped for {overlap:.2f} s (renewal interval {RENEW_S:.1f} s)"
    record("Redis Sentinel: master SIGKILLed mid-run (2+2 workers, 20 AVIDs)",
           failover_s=round(failover_s, 1), gateway_back_s=round(back_wall - kill_wall, 1),
           refused_503=len(refusals), slowest_answer_s=round(max(a[3] for a in after), 2),
           refusal=refusals[0][2] if refusals else None, recover_s=round(max(failover_s, back_wall - kill_wall), 1),
           download_overlap_s=round(overlap, 2), renew_interval_s=RENEW_S,
           download_attempts_stopped=len(lost_slots), running_download_ended=victim_ends, jobs=N, completed=len(completed),
           data_lost="none")
