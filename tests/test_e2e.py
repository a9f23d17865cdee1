"""End to end: fixture site + `nassav up` as real processes, one AVID from POST to MP4."""

from __future__ import annotations

import pytest

from tests.e2e_helpers import EventRecorder, Service, http, media_duration_s, wait_gone
from tools.fixture_site import FixtureSite

STAGE_ORDER = ["queued", "resolve", "scrape", "cover", "download", "completed"]


@pytest.fixture
def site():
    s = FixtureSite.start(titles=("DEMO-001",), stream_kind="aes128", duration_s=12.0, segment_s=2.0)
    yield s
    s.stop()


def _stage_of(msg: dict) -> str | None:
    t, stage = msg["type"], (msg.get("data") or {}).get("stage", "")
    if t == "queued":
        return "queued"
    if t == "task_completed":
        return "completed"
    if t in ("stage_started", "stage_finished", "progress_update") and stage in STAGE_ORDER:
        return stage
    return None


def run_one_avid(site: FixtureSite, tmp_path, *, redis_url: str | None):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir, redis_url=redis_url)
    svc = Service(cfg, data_dir, drop_redis_env=redis_url is None)
    rec = None
    try:
        svc.wait_ready()
        rec = EventRecorder(f"ws://127.0.0.1:{svc.port}/ws/tasks/")
        first = rec.wait_type("queue_status", timeout_s=10)
        assert rec.messages[0] is first

        code, body = http("POST", svc.base + "/api/downloads/demo-001")
        assert code == 202, body
        assert body["code"] == 202 and body["data"]["avid"] == "DEMO-001"
        job_id = body["data"]["job_id"]

        code, again = http("POST", svc.base + "/api/downloads/DEMO-001")
        assert code == 409 and again["data"]["job_id"] == job_id

        code, bad = http("POST", svc.base + "/api/downloads/..%2F..%2Fetc")
        assert code in (400, 404) and bad.get("code") in (400, 404, None)

        done = rec.wait_type("task_completed", job_id, timeout_s=120)
        assert not [m for m in rec.messages if m["type"] == "task_failed"], rec.messages

        mine = [m for m in rec.messages if (m.get("data") or {}).get("task_id") == job_id]
        stages = [s for s in map(_stage_of, mine) if s]
        ranks = [STAGE_ORDER.index(s) for s in stages]
        assert ranks == sorted(ranks), stages
        assert set(stages) == set(STAGE_ORDER), stages
        progress = [m["data"]["percent"] for m in mine if m["type"] == "progress_update"]
        assert progress and progress[-1] == 100
        assert progress.count(100) == 1

        mp4 = data_dir / "DEMO-001" / "DEMO-001.mp4"
        assert mp4.exists()
        expected = site.stream("DEMO-001").duration_s
        got = media_duration_s(mp4)
        assert abs(got - expected) <= 0.02 * expected, (got, expected)
        for name in ("DEMO-001.json", "DEMO-001.jpg", "DEMO-001.nfo", "DEMO-001-poster.jpg"):
            assert (data_dir / "DEMO-001" / name).exists(), name

        code, body = http("POST", svc.base + "/api/downloads/DEMO-001")
        assert code == 409 and body["data"]["status"] == "downloaded"

        # A client that reconnects with the last id it saw gets what it missed.
        seen = [m for m in mine if m.get("id")]
        cut = seen[2]["id"]
        rec2 = EventRecorder(f"ws://127.0.0.1:{svc.port}/ws/tasks/?last_id={cut}")
        rec2.wait_type("task_completed", job_id, timeout_s=10)
        replay = [m["id"] for m in rec2.messages if m.get("id") and (m.get("data") or {}).get("task_id") == job_id]
        assert replay == [m["id"] for m in seen[3:]]
        rec2.close()

        code, qs = http("GET", svc.base + "/api/tasks/queue/status")
        assert code == 200 and qs["data"]["total_count"] == 0
        return svc, done
    finally:
        if rec:
            rec.close()
        redis_pid_file = data_dir / ".redis" / "redis.pid"
        redis_pid = int(redis_pid_file.read_text()) if redis_pid_file.exists() else None
        rc = svc.interrupt(timeout_s=60) if svc.proc.poll() is None else svc.proc.returncode
        svc.stop()
        assert rc == 0, svc.output()
        assert not svc.group_alive(), "a child of nassav up survived Ctrl-C"
        if redis_pid:
            assert wait_gone(redis_pid), "the embedded Redis survived Ctrl-C"


def test_one_avid_end_to_end_on_embedded_redis(site, tmp_path):
    run_one_avid(site, tmp_path, redis_url=None)


def test_one_avid_end_to_end_on_configured_redis(site, tmp_path, r, redis_url):
    run_one_avid(site, tmp_path, redis_url=redis_url)


def test_fallback_and_all_sources_failing(tmp_path, r, redis_url):
    """Top source blocked → the next one serves it, and the events name both outcomes;
    a title no source has fails with one reason per source and frees its claim."""
    from pipeline.config import DEFAULT_SOURCES

    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"), stream_kind="clear", duration_s=4.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir, redis_url=redis_url)
    site.set_scenario("missav", "challenge_403", avid="DEMO-001")
    for name in DEFAULT_SOURCES:
        site.set_scenario(name, "not_found", avid="DEMO-002")
    svc = Service(cfg, data_dir)
    rec = None
    try:
        svc.wait_ready()
        rec = EventRecorder(f"ws://127.0.0.1:{svc.port}/ws/tasks/")
        ok_job = http("POST", svc.base + "/api/downloads/DEMO-001")[1]["data"]["job_id"]
        bad_job = http("POST", svc.base + "/api/downloads/DEMO-002")[1]["data"]["job_id"]

        rec.wait_type("task_completed", ok_job, timeout_s=90)
        resolved = [m for m in rec.messages if m["type"] == "stage_finished"
                    and m["data"]["task_id"] == ok_job and m["data"]["stage"] == "resolve"][0]
        outcomes = resolved["data"]["outcomes"]
        assert outcomes[0].startswith("missav: blocked") and "403" in outcomes[0], outcomes
        assert outcomes[-1] == "jable: found", outcomes
        assert resolved["data"]["source"] == "jable"

        failed = rec.wait_type("task_failed", bad_job, timeout_s=90)
        reasons = failed["data"]["reasons"]
        assert len(reasons) == len(DEFAULT_SOURCES), reasons
        assert all("not found" in line for line in reasons), reasons
        assert {line.split(":")[0] for line in reasons} == set(DEFAULT_SOURCES)
        # The claim is free again: the same AVID can be submitted once more.
        code, _ = http("POST", svc.base + "/api/downloads/DEMO-002")
        assert code == 202
    finally:
        if rec:
            rec.close()
        svc.stop()
        site.stop()
