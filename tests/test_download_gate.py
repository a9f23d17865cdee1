"""The download stage and its gate on a real Redis, the fixture site and the real disk: a low
disk (the threshold set above the real free space) or a closed window makes a download wait
without a slot, a running one stops with its parts kept and resumes; the clock is injected."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from actors import stages
from actors.context import Context
from actors.registry import CHAIN, Chain, declare
from pipeline import events as ev
from pipeline.avid import parse
from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE
from pipeline.config import load
from pipeline.diskspace import DISK_LOW, DISK_OK
from pipeline.download_gate import Pause, Paused
from pipeline.errors import Cancelled
from pipeline.jobs import Jobs
from pipeline.mutex import Mutex
from pipeline.schedule import Schedule
from tests.api_helpers import gateway
from tests.conftest import wait_for
from tools.fixture_site import FixtureSite

AVID = "DEMO-001"
SEGMENTS = 16
HUGE = 10 ** 18  # bytes: more than any disk has free


@pytest.fixture
def site():
    s = FixtureSite.start(titles=(AVID,), stream_kind="clear", duration_s=float(SEGMENTS), segment_s=1.0)
    yield s
    s.stop()


def make_ctx(site, tmp_path: Path, redis_url: str, **download) -> Context:
    extra = {"download": {"concurrency": 1, **download}}
    cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                 extra=extra), {})
    c = Context.create(cfg, redis_url)
    c.gate.poll_s = 0.05
    return c


@pytest.fixture
def ctx(site, tmp_path, r, redis_url):
    c = make_ctx(site, tmp_path, redis_url)
    yield c
    c.shutdown.set()
    c.redis.close()


class Run:
    """``stages.download`` in a thread, as a worker runs it; ``error`` holds what it raised."""

    def __init__(self, c: Context):
        self.c, self.avid = c, parse(AVID)
        self.job_id = c.jobs.submit(AVID).job_id
        stages.resolve(c, self.avid, self.job_id)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            stages.download(self.c, self.avid, self.job_id)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def join(self, timeout_s: float = 60) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the download stage did not end"

    def message(self) -> str:
        return (self.c.jobs.get(self.job_id) or {}).get("message", "")

    def events(self, type_: str | None = None, stage: str | None = None) -> list[ev.Event]:
        return [e for e in self.c.events.after("0", count=10_000)
                if (type_ is None or e.type == type_) and (stage is None or e.stage == stage)]

    def parts(self) -> list[Path]:
        return sorted((self.c.store.part_dir(self.avid) / "seg").glob("*.ts"))


def test_a_low_disk_holds_a_download_back_without_a_slot_until_space_returns(site, ctx):
    ctx.gate.disk.min_free_bytes = HUGE
    run = Run(ctx)
    wait_for(lambda: run.message().startswith("waiting: disk has"), 10, 0.05, "the disk wait")
    assert run.message().endswith("needs 1000000000 GB")
    time.sleep(0.3)  # several readings: still one wait event, one disk_low
    waits = run.events(ev.STAGE_STARTED, "download-wait")
    assert len(waits) == 1 and waits[0].data["reason"] == "disk" and waits[0].data["min_free_bytes"] == HUGE
    low = run.events(DISK_LOW)
    assert len(low) == 1 and set(low[0].data) == {"free_bytes", "min_free_bytes", "path"}
    assert low[0].data["path"] == str(ctx.config.data_path)
    assert Mutex(ctx.redis).holders() == {}  # waiting holds no slot
    assert site.stats()["segment_requests"].get(AVID, 0) == 0
    job = ctx.jobs.get(run.job_id)
    assert job["status"] == "running" and job["slot_since"] == ""

    ctx.gate.disk.min_free_bytes = 0  # space is back
    run.join()
    assert run.error is None and ctx.store.has_video(run.avid)
    assert len(run.events(DISK_OK)) == 1 and run.events(DISK_OK)[0].data["min_free_bytes"] == 0
    assert Mutex(ctx.redis).holders() == {}


def test_a_running_download_stops_on_a_low_disk_keeps_its_parts_and_resumes(site, ctx):
    site.set_faults(latency_ms=250)
    run = Run(ctx)
    wait_for(lambda: len(run.parts()) >= 3, 30, 0.02, "a few segments")
    ctx.gate.disk.min_free_bytes = HUGE
    wait_for(lambda: run.message().startswith("waiting: disk has"), 10, 0.05, "the stop")
    stops = run.events(ev.STAGE_FINISHED, "download-stop")
    assert len(stops) == 1 and "disk has" in stops[0].data["message"]
    kept = len(run.parts())
    assert 3 <= kept < SEGMENTS and not ctx.store.has_video(run.avid)
    assert Mutex(ctx.redis).holders() == {}  # the slot went back while it waits
    requests_then = site.stats()["segment_requests"][AVID]
    time.sleep(0.5)
    assert site.stats()["segment_requests"][AVID] == requests_then  # nothing fetched while paused

    site.set_faults(latency_ms=0)
    ctx.gate.disk.min_free_bytes = 0
    run.join()
    assert run.error is None and ctx.store.has_video(run.avid)
    done = run.events(ev.STAGE_FINISHED, "download")
    assert len(done) == 1 and done[0].data["segments"] == SEGMENTS
    assert done[0].data["segments_fetched"] <= SEGMENTS - kept  # the kept parts were not fetched again
    assert [e.type for e in run.events() if e.type in (DISK_LOW, DISK_OK)] == [DISK_LOW, DISK_OK]


def test_quiet_hours_hold_downloads_until_the_window_opens_and_stop_them_when_it_closes(site, ctx):
    # The window is read in Shanghai (UTC+8) while the clock gives UTC instants: the stage
    # must take "now" in the zone, and say the zone in its message.
    clock = [datetime(2026, 3, 14, 4, 0, tzinfo=timezone.utc)]  # 12:00 in Shanghai
    ctx.gate.now = lambda: clock[0]
    ctx.gate.schedule = Schedule.parse("01:00-07:00", timezone="Asia/Shanghai")
    site.set_faults(latency_ms=250)
    run = Run(ctx)
    waiting = "waiting: quiet hours until 01:00 (Asia/Shanghai)"
    wait_for(lambda: run.message() == waiting, 10, 0.05, "the quiet-hours wait")
    # The job's message is written just before the event is appended: wait for both.
    wait_for(lambda: run.events(ev.STAGE_STARTED, "download-wait"), 5, 0.02, "the wait's event")
    wait = run.events(ev.STAGE_STARTED, "download-wait")[0]
    assert wait.data["reason"] == "hours" and wait.data["until"] == "01:00"
    assert wait.data["timezone"] == "Asia/Shanghai"
    assert site.stats()["segment_requests"].get(AVID, 0) == 0

    clock[0] = datetime(2026, 3, 14, 17, 0, tzinfo=timezone.utc)  # 01:00 in Shanghai: the window opens
    wait_for(lambda: len(run.parts()) >= 2, 30, 0.02, "the download to start")
    clock[0] = datetime(2026, 3, 14, 23, 0, tzinfo=timezone.utc)  # 07:00 there: it closes while it runs
    wait_for(lambda: run.message() == waiting, 10, 0.05, "the stop at 07:00")
    wait_for(lambda: run.events(ev.STAGE_FINISHED, "download-stop"), 5, 0.02, "the stop's event")
    assert "quiet hours until 01:00 (Asia/Shanghai)" in run.events(
        ev.STAGE_FINISHED, "download-stop")[0].data["message"]
    assert not ctx.store.has_video(run.avid) and len(run.parts()) >= 2

    site.set_faults(latency_ms=0)
    clock[0] = datetime(2026, 3, 15, 18, 0, tzinfo=timezone.utc)  # 02:00 on the 16th in Shanghai
    run.join()
    assert run.error is None and ctx.store.has_video(run.avid)
    assert len(run.events(ev.STAGE_STARTED, "download-wait")) == 2  # one per wait


def test_a_rate_cap_holds_for_its_hours_and_lifts_when_they_end(site, ctx):
    cap = 24 << 10
    clock = [datetime(2026, 3, 14, 12, 0)]
    ctx.gate.now = lambda: clock[0]
    ctx.gate.schedule = Schedule.parse("", [("08:00-23:00", cap)])
    run = Run(ctx)
    wait_for(lambda: run.parts(), 30, 0.02, "the first segment")
    t0, b0 = time.monotonic(), sum(p.stat().st_size for p in run.parts())
    time.sleep(2.0)
    sizes = [p.stat().st_size for p in run.parts()]
    elapsed = time.monotonic() - t0
    assert not ctx.store.has_video(run.avid) and len(sizes) < SEGMENTS  # still going, capped
    # The limiter never lets more through than the cap allows, plus the segment in hand.
    assert sum(sizes) - b0 <= cap * elapsed + 2 * max(sizes)

    clock[0] = datetime(2026, 3, 14, 23, 0)  # the capped hours end
    run.join()
    assert run.error is None and ctx.store.has_video(run.avid)
    stop = run.events(ev.STAGE_FINISHED, "download-stop")
    assert len(stop) == 1 and "the rate cap is now unlimited" in stop[0].data["message"]
    assert run.events(ev.STAGE_STARTED, "download-wait") == []  # it restarted at once


def test_a_cancel_ends_the_wait_for_space(ctx):
    ctx.gate.disk.min_free_bytes = HUGE
    run = Run(ctx)
    wait_for(lambda: run.message().startswith("waiting: disk has"), 10, 0.05, "the disk wait")
    ctx.jobs.update(run.job_id, cancel=1)
    run.join(10)
    assert isinstance(run.error, Cancelled) and "waiting: disk has" in str(run.error)


def test_a_long_wait_gives_the_message_back_instead_of_hitting_the_time_limit(site, tmp_path, r, redis_url):
    c = make_ctx(site, tmp_path, redis_url, pause_resend_s=1, min_free_gb=10_000_000)
    try:
        run = Run(c)
        run.join(20)
        assert isinstance(run.error, Paused) and run.error.pause.kind == "disk"
        assert str(run.error).startswith("waiting: disk has")
        assert Mutex(c.redis).holders() == {}
    finally:
        c.redis.close()


def test_the_runner_sends_a_paused_download_again_without_a_retry(tmp_path, r, redis_url):
    p = tmp_path / "c.yaml"
    p.write_text(f"data_dir: {tmp_path / 'data'}\nredis_url: {redis_url}\ndownload: {{max_retries: 0}}\n")
    config = load(p, {})
    c = Context.create(config, redis_url)
    calls: Counter[str] = Counter()

    def stage(name):
        def run(ctx, avid, job_id):
            calls[name] += 1
            if name == "download" and calls[name] < 3:
                raise Paused(Pause("hours", "quiet hours until 01:00", until="01:00"))
        return run

    chain = Chain(tuple(s.__class__(s.name, stage(s.name), s.queue) for s in CHAIN.stages), CHAIN.last)
    broker = StubBroker()
    broker.emit_after("process_boot")
    actors = declare(broker, config, lambda: c, chain=chain, min_backoff_ms=10, max_backoff_ms=20)
    worker = Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        job = c.jobs.submit("ABC-123")
        actors.start("ABC-123", job.job_id)
        for _ in range(6):
            for q in (METADATA_QUEUE, DOWNLOAD_QUEUE):
                broker.join(q, fail_fast=False, timeout=30_000)
        worker.join()
        assert calls["download"] == 3  # max_retries is 0: a retry would have failed the job
        assert c.jobs.get(job.job_id)["status"] == "completed"
        assert [e for e in c.events.after("0") if e.type == ev.WARNING] == []
    finally:
        worker.stop()
        broker.close()
        c.redis.close()


def test_health_says_why_downloads_are_paused(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url, download={"min_free_gb": 10_000_000, "hours": "01:00-07:00",
                                                         "timezone": "Asia/Shanghai",
                                                         "bandwidth": [{"hours": "00:00-24:00",
                                                                        "limit": "1MiB/s"}]}) as c:
        gate = c.st.download_gate
        gate.now = lambda: datetime(2026, 3, 14, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
        d = c.get("/health").json()["data"]["downloads"]
        assert d["paused"] is True and [x["reason"] for x in d["reasons"]] == ["hours", "disk"]
        assert d["message"].startswith("quiet hours until 01:00 (Asia/Shanghai); disk has ")
        assert d["reasons"][0]["timezone"] == d["timezone"] == "Asia/Shanghai"
        assert d["reasons"][1]["min_free_bytes"] == 10_000_000 * 10 ** 9
        assert d["speed_limit_bytes_per_s"] == 1 << 20
        gate.now = lambda: datetime(2026, 3, 13, 18, 0, tzinfo=timezone.utc)  # 02:00 on the 14th there
        gate.disk.min_free_bytes = 0
        d = c.get("/health").json()["data"]["downloads"]
        assert d == {"paused": False, "message": "", "reasons": [], "speed_limit_bytes_per_s": 1 << 20,
                     "timezone": "Asia/Shanghai", "waiting": []}
        # A job waiting at the gate is listed with its own reason (here: held to more than the
        # threshold after a stop, which the gateway's own reading cannot know).
        jobs = Jobs(r)
        job = jobs.submit("ABC-123")
        jobs.update(job.job_id, status="running", stage="download", wait_reason="disk",
                    message="waiting: disk has 7 MB free, needs 9 MB")
        d = c.get("/health").json()["data"]["downloads"]
        assert d["waiting"] == [{"avid": "ABC-123", "job_id": job.job_id,
                                 "message": "waiting: disk has 7 MB free, needs 9 MB"}], d


def test_disk_and_schedule_settings_are_changeable_through_the_api(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        got = c.get("/api/setting").json()["data"]["settings"]["download"]
        assert (got["min_free_gb"], got["hours"], got["bandwidth"]) == (5.0, "", [])
        change = {"download": {"min_free_gb": 20, "hours": "01:00-07:00",
                               "bandwidth": [{"hours": "08:00-23:00", "limit": "2MiB/s"}]}}
        change["download"]["timezone"] = "Asia/Shanghai"
        res = c.put("/api/setting", json=change)
        assert res.status_code == 200, res.text
        nxt = res.json()["data"]["next_start"]["download"]
        assert nxt["timezone"] == "Asia/Shanghai"
        assert nxt["bandwidth"] == [{"hours": "08:00-23:00", "limit": "2MiB/s"}] and nxt["min_free_gb"] == 20
        for bad, named in (({"hours": "1am-7am"}, "HH:MM-HH:MM"),
                           ({"bandwidth": [{"hours": "08:00-23:00", "limit": "fast"}]}, "2MiB/s"),
                           ({"min_free_gb": -1}, "min_free_gb"),
                           ({"timezone": "Mars/Olympus"}, "IANA time zone name")):
            res = c.put("/api/setting", json={"download": bad})
            assert res.status_code == 400 and named in res.json()["message"], res.text


def test_nassav_status_says_why_downloads_are_paused(tmp_path, r, redis_url):
    import io

    from rich.console import Console

    from gateway.cli.client import ApiClient, status
    from tests.live_server import live_gateway

    with live_gateway(tmp_path / "data", redis_url, download={"min_free_gb": 10_000_000, "hours": "01:00-07:00",
                                                              "timezone": "Asia/Shanghai"}) as g:
        g.st.download_gate.now = lambda: datetime(2026, 3, 14, 4, 0, tzinfo=timezone.utc)  # 12:00 there
        out = io.StringIO()
        status(ApiClient(g.base), console=Console(file=out, width=160))
        assert "downloads paused: quiet hours until 01:00 (Asia/Shanghai); disk has " in out.getvalue()
        g.st.download_gate.now = lambda: datetime(2026, 3, 13, 18, 0, tzinfo=timezone.utc)  # 02:00 there
        out = io.StringIO()
        status(ApiClient(g.base), console=Console(file=out, width=160))
        assert "downloads paused: disk has " in out.getvalue()
        assert "needs 10000000 GB" in out.getvalue()
        g.st.download_gate.disk.min_free_bytes = 0
        out = io.StringIO()
        status(ApiClient(g.base), console=Console(file=out, width=160))
        assert "redis ok" in out.getvalue() and "paused" not in out.getvalue()
        jobs = Jobs(r)
        job = jobs.submit("ABC-123")
        jobs.update(job.job_id, status="running", wait_reason="hours", message="waiting: quiet hours until 01:00")
        out = io.StringIO()
        status(ApiClient(g.base), console=Console(file=out, width=160))
        assert "ABC-123 waiting: quiet hours until 01:00" in out.getvalue()
