"""The periodic sweep on a real Redis, a real Dramatiq Redis broker and a real data dir."""

import os
import time

from actors.context import Context
from actors.registry import declare
from actors.sweeping import probe_sources
from pipeline.avid import parse
from pipeline.broker import make_broker
from pipeline.claims import Claims, claim_key
from pipeline.config import load
from pipeline.jobs import Jobs
from pipeline.source_health import SourceHealth
from pipeline.store import ResourceStore
from pipeline.broker import pending_job_ids
from pipeline.sweep import Sweeper, last_report
from tools.fixture_site import FixtureSite


def make(r, tmp_path, calls):
    return Sweeper(r, ResourceStore(tmp_path), requeue=lambda *a: calls.append(a), grace_s=60)


def test_reaps_claims_of_gone_jobs(r, tmp_path):
    r.set(claim_key("ABC-001"), "ghost")  # a claim with no job behind it
    live = Jobs(r).submit("ABC-002")
    report = make(r, tmp_path, []).run_once()
    assert report.claims_reaped == ["ABC-001"]
    assert Claims(r).holder("ABC-002") == live.job_id


def test_requeues_a_job_with_no_message_only_after_the_grace(r, tmp_path, redis_url):
    jobs = Jobs(r)
    lost = jobs.submit("ABC-001")
    held = jobs.submit("ABC-002")
    jobs.update(held.job_id, status="running", stage="cover")
    broker = make_broker(redis_url, load(None, {}).workers)
    actors = declare(broker, load(None, {}))
    actors.send("download", "ABC-002", held.job_id)  # its message waits in the download queue
    assert held.job_id in pending_job_ids(r)
    calls = []
    sweeper = make(r, tmp_path, calls)
    assert sweeper.run_once().jobs_requeued == []  # both just moved: within the grace
    later = time.time() + 120
    report = sweeper.run_once(now=later)
    assert report.jobs_requeued == [lost.job_id]
    assert calls == [("resolve", "ABC-001", lost.job_id)]
    broker.close()


def test_reports_orphans_and_removes_stale_temp_files(r, tmp_path):
    store = ResourceStore(tmp_path)
    a = parse("ABC-001")
    store.dir(a).mkdir(parents=True)
    stale = store.dir(a) / ".ABC-001.mp4.x.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = store.dir(a) / ".ABC-001.json.y.tmp"
    fresh.write_bytes(b"being written")
    (tmp_path / ".parts" / "ABC-009").mkdir(parents=True)
    b = parse("ABC-002")
    store.write_meta(b, {"title": "ok"})
    report = make(r, tmp_path, []).run_once()
    assert report.temp_files_removed == ["ABC-001/.ABC-001.mp4.x.tmp"]
    assert fresh.exists() and not stale.exists()
    assert "ABC-001/ has no ABC-001.json" in report.orphans
    assert ".parts/ABC-009 belongs to no live job" in report.orphans
    assert not any("ABC-002" in o for o in report.orphans)
    assert last_report(r)["orphans"] == report.orphans


def test_lock_lets_one_sweep_per_period(r, tmp_path):
    a, b = make(r, tmp_path, []), make(r, tmp_path, [])
    assert a.try_run(5) is not None
    assert b.try_run(5) is None


def test_probe_brings_a_failing_source_back_or_keeps_it_down(r, tmp_path, redis_url):
    with FixtureSite.start() as site:
        cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "d", redis_url=redis_url), {})
        health = SourceHealth(r)
        health.record("jable", "blocked", "HTTP 403")  # one failure: "failing", not in back-off
        health.record("memo", "upstream error", "HTTP 502")
        site.set_scenario("memo", "challenge_200")
        ctx = Context.create(cfg, redis_url)
        assert probe_sources(ctx) == {"jable": "probe ok", "memo": "blocked"}
        assert health.get("jable")["state"] == "ok"
        assert health.get("memo")["state"] == "backoff"  # second failure in a row
        ctx.redis.close()
