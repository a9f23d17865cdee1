"""End to end with real processes (`nassav up` and the fixture site): an edition upgrade asked
through the API, and one found by the periodic check, replace the downloaded video; with no
better edition the job completes and the video stays as it was."""

from __future__ import annotations

import pytest

from tests.e2e_helpers import EventRecorder, Service, http, media_duration_s
from tools.fixture_site import FixtureSite


@pytest.fixture
def site():
    s = FixtureSite.start(titles=("DEMO-001",), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    yield s
    s.stop()


def finished(rec: EventRecorder, job_id: str, stage: str) -> dict:
    return [m for m in rec.messages if m["type"] == "stage_finished" and m["data"]["task_id"] == job_id
            and m["data"]["stage"] == stage][-1]["data"]


def start(site, tmp_path, redis_url, **download):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir, redis_url=redis_url,
                            extra={"download": {"editions": ["C", "regular"], **download}})
    svc = Service(cfg, data_dir)
    svc.wait_ready()
    return svc, EventRecorder(f"ws://127.0.0.1:{svc.port}/ws/tasks/"), data_dir / "DEMO-001" / "DEMO-001.mp4"


def test_upgrade_through_the_api(site, tmp_path, r, redis_url):
    svc, rec, mp4 = start(site, tmp_path, redis_url)
    try:
        code, body = http("POST", svc.base + "/api/resource/DEMO-001/upgrade")
        assert code == 404 and "download it first" in body["message"]
        job = http("POST", svc.base + "/api/downloads/DEMO-001")[1]["data"]["job_id"]
        rec.wait_type("task_completed", job, timeout_s=120)
        assert finished(rec, job, "resolve")["edition"] == "regular"
        old = mp4.stat()

        # No better edition anywhere: the job completes and the video is untouched.
        code, body = http("POST", svc.base + "/api/resource/DEMO-001/upgrade")
        assert code == 202 and body["data"]["edition"] == "regular"
        none = body["data"]["job_id"]
        rec.wait_type("task_completed", none, timeout_s=60)
        assert finished(rec, none, "resolve")["upgrade"] is False
        assert (mp4.stat().st_ino, mp4.stat().st_mtime_ns) == (old.st_ino, old.st_mtime_ns)

        site.add_edition("DEMO-001", "C", ["jable"])
        code, body = http("POST", svc.base + "/api/resource/DEMO-001/upgrade")
        assert code == 202
        up = body["data"]["job_id"]
        rec.wait_type("task_completed", up, timeout_s=120)
        assert not [m for m in rec.messages if m["type"] == "task_failed"]
        data = finished(rec, up, "download")
        assert (data["edition_from"], data["edition_to"], data["source"]) == ("regular", "C", "jable")
        assert media_duration_s(mp4) == pytest.approx(5.0, abs=0.5)
        meta = http("GET", svc.base + "/api/resource/metadata?avid=DEMO-001")[1]["data"]
        assert meta["edition"] == "C"
        attempts = http("GET", svc.base + "/api/resource/DEMO-001/attempts")[1]["data"]
        assert [a["kind"] for a in attempts][:3] == ["upgrade", "upgrade", "download"]
    finally:
        rec.close()
        svc.stop()


def test_the_periodic_check_finds_the_better_edition(site, tmp_path, r, redis_url):
    svc, rec, mp4 = start(site, tmp_path, redis_url, upgrade_check_interval_s=1)
    try:
        job = http("POST", svc.base + "/api/downloads/DEMO-001")[1]["data"]["job_id"]
        rec.wait_type("task_completed", job, timeout_s=120)
        site.add_edition("DEMO-001", "C", ["missav", "jable"])

        def upgraded():
            return [m for m in rec.messages if m["type"] == "stage_finished" and m["data"]["stage"] == "download"
                    and m["data"].get("edition_to") == "C"]
        from tests.conftest import wait_for
        data = wait_for(upgraded, 120, 0.2, "an upgrade to the C edition")[0]["data"]
        assert data["source"] == "missav" and data["replaced"] is True  # the heavier source, same edition
        assert media_duration_s(mp4) == pytest.approx(5.0, abs=0.5)
    finally:
        rec.close()
        svc.stop()
