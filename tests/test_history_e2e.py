"""History, retry and the blocklist end to end: fixture site + `nassav up` as real processes.

A download that fails is retried from its download stage (resolve, scrape and cover are not run
again); a title whose sources are all blocked by the user fails in resolve with that outcome per
source, and is retried from resolve once one source is lifted. The history shows both jobs of
each title, stage by stage."""

from __future__ import annotations

from pipeline.config import DEFAULT_SOURCES
from tests.e2e_helpers import EventRecorder, Service, http
from tests.conftest import wait_for
from tools.fixture_site import FixtureSite


def _history(svc: Service, avid: str, jobs: int) -> list[dict]:
    """The AVID's history once the projection has folded ``jobs`` ended jobs."""
    out: list[dict] = []

    def ended():
        nonlocal out
        code, body = http("GET", f"{svc.base}/api/resource/{avid}/history")
        assert code == 200, body
        out = body["data"]
        return len(out) == jobs and all(j["ended_at"] for j in out) and all(
            any(s["ended_at"] for s in j["stages"]) for j in out)
    wait_for(ended, 20, 0.1, f"{avid}'s history")
    return out


def _stages(job: dict) -> dict[str, dict]:
    return {s["stage"]: s for s in job["stages"]}


def test_failed_jobs_are_retried_from_their_stage_and_remembered(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # No retries: a failed download fails its job at once.
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir, redis_url=redis_url,
                            extra={"download": {"max_retries": 0, "segment_retries": 0}})
    svc = Service(cfg, data_dir)
    rec = None
    try:
        svc.wait_ready()
        rec = EventRecorder(f"ws://127.0.0.1:{svc.port}/ws/tasks/")
        rec.wait_type("queue_status", timeout_s=10)

        # 1. The download fails (every segment answers 500).
        site.set_faults(error_rate=1.0)
        code, body = http("POST", svc.base + "/api/downloads/DEMO-001")
        assert code == 202, body
        first = body["data"]["job_id"]
        rec.wait_type("task_failed", first, timeout_s=90)
        site.reset()

        code, body = http("POST", svc.base + "/api/resource/NONE-001/retry")
        assert code == 404 and "no job in its history" in body["message"]
        code, body = http("POST", svc.base + "/api/resource/DEMO-001/retry")
        assert code == 202, body
        assert (body["data"]["stage"], body["data"]["retry_of"]) == ("download", first)
        second = body["data"]["job_id"]
        rec.wait_type("task_completed", second, timeout_s=90)
        ran = {m["data"]["stage"] for m in rec.messages
               if m["type"] == "stage_started" and (m.get("data") or {}).get("task_id") == second}
        assert "download" in ran and not ran & {"resolve", "scrape", "cover"}, ran
        assert (data_dir / "DEMO-001" / "DEMO-001.mp4").exists()
        code, body = http("POST", svc.base + "/api/resource/DEMO-001/retry")
        assert code == 400 and "only a failed or cancelled job is retried" in body["message"]

        newest, oldest = _history(svc, "DEMO-001", 2)
        assert (oldest["job_id"], oldest["status"], oldest["stage"]) == (first, "failed", "download")
        st = _stages(oldest)
        assert [s["stage"] for s in oldest["stages"]][:3] == ["resolve", "scrape", "cover"]
        assert st["resolve"]["outcome"] == "found" and st["resolve"]["source"] in DEFAULT_SOURCES
        assert st["resolve"]["sources"][-1] == {"source": st["resolve"]["source"], "outcome": "found", "detail": ""}
        assert st["download"]["outcome"] == "failed" and "segment" in st["download"]["message"]
        assert st["resolve"]["took_s"] is not None and st["resolve"]["took_s"] >= 0
        assert (newest["job_id"], newest["status"]) == (second, "completed")
        st = _stages(newest)
        assert st["queued"]["detail"] == {"kind": "download", "retry_of": first, "start_stage": "download"}
        assert set(st) == {"queued", "download"}
        mp4_bytes = (data_dir / "DEMO-001" / "DEMO-001.mp4").stat().st_size
        assert st["download"]["outcome"] == "done" and st["download"]["bytes"] > 0
        assert st["download"]["bytes"] <= mp4_bytes * 2  # what was fetched, the same order as the file
        assert abs(st["download"]["video_duration_s"] - 4.0) < 0.5

        # 2. Every source blocked for DEMO-002: resolve asks none and fails.
        for name in DEFAULT_SOURCES:
            code, body = http("POST", f"{svc.base}/api/blocklist/DEMO-002", {"source": name, "reason": "bad copy"})
            assert code == 201, body
        job = http("POST", svc.base + "/api/downloads/DEMO-002")[1]["data"]["job_id"]
        rec.wait_type("task_failed", job, timeout_s=60)
        asked = site.stats()["requests"]
        assert sum(asked.get(n, 0) for n in DEFAULT_SOURCES) == 0, asked  # no source was asked
        (failed,) = _history(svc, "DEMO-002", 1)
        resolve = _stages(failed)["resolve"]
        assert resolve["outcome"] == "failed"
        assert sorted((s["source"], s["outcome"]) for s in resolve["sources"]) == \
            sorted((n, "blocked by the user") for n in DEFAULT_SOURCES)

        last = list(DEFAULT_SOURCES)[-1]
        assert http("DELETE", f"{svc.base}/api/blocklist/DEMO-002/{last}")[0] == 200
        code, body = http("POST", svc.base + "/api/resource/DEMO-002/retry")
        assert code == 202 and body["data"]["stage"] == "resolve", body
        rec.wait_type("task_completed", body["data"]["job_id"], timeout_s=90)
        newest, _ = _history(svc, "DEMO-002", 2)
        resolve = _stages(newest)["resolve"]
        assert resolve["source"] == last
        assert [s["outcome"] for s in resolve["sources"]] == ["blocked by the user"] * (len(DEFAULT_SOURCES) - 1) + ["found"]

        # 3. The whole AVID blocked: no path queues it, not even a retry of its failed job.
        job = http("POST", svc.base + "/api/downloads/NOPE-001")[1]["data"]["job_id"]  # no site has it
        rec.wait_type("task_failed", job, timeout_s=60)
        _history(svc, "NOPE-001", 1)
        assert http("POST", f"{svc.base}/api/blocklist/NOPE-001", {"reason": "enough"})[0] == 201
        for path in ("/api/downloads/NOPE-001", "/nassav/api/downloads/NOPE-001", "/api/resource/NOPE-001/retry"):
            code, body = http("POST", svc.base + path)
            assert code == 403 and "NOPE-001 is on the blocklist (enough)" in body["message"], (path, body)
        code, body = http("POST", svc.base + "/api/resource/DEMO-002/retry")
        assert code == 400 and "completed" in body["message"]  # its latest job did not fail
    finally:
        if rec:
            rec.close()
        svc.stop()
        site.stop()
