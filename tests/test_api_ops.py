"""Sources and cookies, settings, workers, metrics, the dashboard, body limit and CORS."""

from __future__ import annotations

import json
import os
import stat
import time

from pipeline import overrides
from pipeline.config import load
from pipeline.events import Events
from pipeline.source_health import SourceHealth
from tests.api_helpers import gateway, settle


def test_source_list_shows_config_and_health(tmp_path, r, redis_url):
    health = SourceHealth(r)
    health.record("jable", "blocked", "HTTP 403")
    health.record("jable", "blocked", "HTTP 403")
    health.record("missav", "found")
    with gateway(tmp_path / "data", redis_url) as c:
        items = c.get("/api/source/list").json()["data"]
        assert [i["name"] for i in items][:3] == ["missav", "jable", "memo"]  # by weight
        jable = next(i for i in items if i["name"] == "jable")
        assert jable["health"] == "backoff" and jable["failures"] == 2 and jable["retry_at"] > time.time()
        assert jable["last_outcome"] == "blocked" and jable["base_url"] == "https://jable.tv"
        assert jable["weight"] == 90 and jable["enabled"] is True
        assert next(i for i in items if i["name"] == "missav")["health"] == "ok"
        assert next(i for i in items if i["name"] == "memo")["health"] == "unknown"


def test_cookies_are_stored_privately_and_shown_masked(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        secret = "cf_clearance=SECRETVALUE123; sid=abcdef987"
        res = c.post("/api/source/cookie", json={"source": "jable", "cookie": secret})
        assert res.status_code == 200 and "SECRETVALUE123" not in res.text
        assert res.json()["data"]["cookie"] == "cf_clearance=SECR…; sid=abcd…"
        f = data / "cookies.json"
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
        assert json.loads(f.read_text())["jable"]["cf_clearance"] == "SECRETVALUE123"
        got = c.get("/api/source/cookie?source=jable")
        assert got.json()["data"]["set"] is True and "SECRETVALUE123" not in got.text
        assert "SECRETVALUE123" not in c.get("/api/source/cookie").text
        assert next(s for s in c.get("/api/source/list").json()["data"] if s["name"] == "jable")["has_cookie"]
        for body in ({"source": "nowhere", "cookie": "a=1"}, {"source": "jable"}, {"source": "jable", "cookie": ""},
                     {"source": "jable", "cookie": "novalue"},
                     {"source": "jable", "cookie": "a=" + "x" * 9000}, {"cookie": "a=1"}):
            assert c.post("/api/source/cookie", json=body).status_code == 400, body
        assert c.get("/api/source/cookie?source=nowhere").status_code == 400
        # auto: a worker fetches it (a message on the metadata queue), the request only queues it.
        res = c.post("/api/source/cookie", json={"source": "memo", "auto": True})
        assert res.status_code == 202 and res.json()["data"]["status"] == "queued"
        queued = [json.loads(m) for m in r.hvals("nassav-dramatiq:metadata.msgs")]
        assert [(m["actor_name"], m["args"]) for m in queued] == [("refresh_cookie", ["memo"])]
        assert c.delete("/api/source/cookie?source=jable").status_code == 200
        assert c.delete("/api/source/cookie?source=jable").status_code == 404
        assert c.request("DELETE", "/api/source/cookie", json={"source": "memo"}).status_code == 404
        assert c.delete("/api/source/cookie").status_code == 400
        assert c.get("/api/source/cookie?source=jable").json()["data"]["set"] is False


def test_settings_validate_store_and_apply_at_next_start(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        got = c.get("/api/setting").json()["data"]
        assert got["settings"]["download"]["concurrency"] == 16 and got["overrides"] == {}
        assert "api_token" not in json.dumps(got) and "redis_url" not in got["settings"]
        res = c.put("/api/setting", json={"download": {"concurrency": 4}, "sources": {"jable": {"weight": 0}}})
        assert res.status_code == 200, res.text
        body = res.json()["data"]
        assert body["overrides"] == {"download": {"concurrency": 4}, "sources": {"jable": {"weight": 0}}}
        assert body["restart_required"] is True and body["next_start"]["download"]["concurrency"] == 4
        assert body["settings"]["download"]["concurrency"] == 16  # running config unchanged
        for bad in ({"redis_url": "redis://x"}, {"api_token": "x"}, {"host": "0.0.0.0"},
                    {"download": {"concurrency": 0}}, {"download": {"concurrency": "many"}},
                    {"download": {"ffmpeg": "/bin/sh"}}, {"sources": {"nowhere": {"weight": 1}}},
                    {"sources": {"jable": {"base_url": "file:///etc"}}}, {"http": {"proxy": "http://x"}},
                    {"download": 5}, {"log_level": "LOUD"}, {}, {"sources": {"jable": {"weight": -1}}}):
            res = c.put("/api/setting", json=bad)
            assert res.status_code == 400, (bad, res.text)
        assert c.put("/api/setting", content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
        # null removes an override
        res = c.put("/api/setting", json={"sources": {"jable": {"weight": None}}})
        assert res.json()["data"]["overrides"] == {"download": {"concurrency": 4}}
    cfg = overrides.apply_stored(load(None, {}, data_dir=str(data)))
    assert cfg.download.concurrency == 4 and cfg.sources["jable"].weight == 90


def test_workers_live_and_stale(tmp_path, r, redis_url):
    now = time.time()
    r.hset("nassav:workers", mapping={
        "h:1": json.dumps({"id": "h:1", "host": "h", "pid": 1, "queues": ["metadata"], "threads": 4,
                           "started_at": now - 100, "last_seen": now - 2}),
        "h:2": json.dumps({"id": "h:2", "host": "h", "pid": 2, "queues": ["download"], "threads": 1,
                           "started_at": now - 500, "last_seen": now - 120}),
        "junk": "not json"})
    with gateway(tmp_path / "data", redis_url) as c:
        live = c.get("/api/workers").json()["data"]
        assert [w["pid"] for w in live] == [1] and live[0]["alive"] is True and live[0]["queues"] == ["metadata"]
        every = c.get("/api/workers?all=true").json()["data"]
        assert [(w["pid"], w["alive"]) for w in every] == [(1, True), (2, False)]
        assert c.get("/api/workers?all=perhaps").status_code == 400


def test_metrics_count_jobs_bytes_and_speed_once(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        c.post("/api/downloads/MET-001")
        ev = Events(r)
        ev.emit("progress_update", avid="MET-002", job_id="j2", stage="download",
                data={"percent": 50, "speed_bytes_per_s": 2048})
        ev.emit("stage_finished", avid="MET-002", job_id="j2", stage="download", data={"bytes": 5000})
        ev.emit("task_completed", avid="MET-002", job_id="j2", stage="download", data={"status": "completed"})
        ev.emit("progress_update", avid="MET-003", job_id="j3", stage="download",
                data={"percent": 10, "speed_bytes_per_s": 1000})
        ev.emit("task_failed", avid="MET-004", job_id="j4", stage="resolve", data={"status": "failed"})
        settle(c)
        text = c.get("/metrics").text
        assert c.get("/metrics").headers["content-type"].startswith("text/plain")
        lines = set(text.splitlines())
        for want in ('nassav_jobs_submitted_total{kind="download"} 1',
                     'nassav_jobs_finished_total{outcome="completed"} 1',
                     'nassav_jobs_finished_total{outcome="failed"} 1',
                     'nassav_download_bytes_total 5000', 'nassav_downloads_completed_total 1',
                     'nassav_download_speed_bytes_per_second 1000',  # j2 ended; j3 still running
                     'nassav_jobs_active{status="queued",kind="download"} 1',
                     'nassav_queue_messages{queue="metadata",state="ready"} 1',
                     '# TYPE nassav_jobs_finished_total counter'):
            assert want in lines, (want, text)


def test_dashboard_lists_both_queues(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        res = c.get("/dashboard/")
        assert res.status_code == 200 and "Dramatiq" in res.text
        assert "metadata" in res.text and "download" in res.text
        assert c.get("/dashboard/queues/metadata").status_code == 200


def test_body_limit_and_cors(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        big = json.dumps({"avids": ["A-1"] * 200_000})
        res = c.post("/api/downloads/batch_submit", content=big, headers={"content-type": "application/json"})
        assert res.status_code == 413 and res.json()["code"] == 413

        def chunks():
            for _ in range(40):
                yield b" " * 50_000
        res = c.post("/api/resource", content=chunks(), headers={"content-type": "application/json"})
        assert res.status_code == 413
        res = c.options("/api/resources/", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in res.headers  # no CORS origins by default
    with gateway(tmp_path / "data", redis_url, cors_origins=["http://nas.local:8080"]) as c:
        res = c.options("/api/resources/", headers={"Origin": "http://nas.local:8080",
                                                     "Access-Control-Request-Method": "GET"})
        assert res.headers["access-control-allow-origin"] == "http://nas.local:8080"
        res = c.get("/api/resources/", headers={"Origin": "http://other.example"})
        assert "access-control-allow-origin" not in res.headers
