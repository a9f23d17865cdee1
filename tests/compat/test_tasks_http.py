"""The old client's download calls and queue, one test per call, against the real gateway on
the real Redis: status and every field the client reads."""

from __future__ import annotations

import re
import time

from pipeline import jobs as jobstates
from tests.api_helpers import gateway, put_resource

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def test_post_downloads_avid(tmp_path, r, redis_url):
    """ResourceDetailView/ResourcesView: 202 → "下载任务已提交"; 409 → "视频已下载"."""
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    with gateway(data, redis_url) as c:
        ok = c.post("/nassav/api/downloads/abc123")
        assert ok.status_code == 202 and ok.json()["code"] == 202 and ok.json()["message"]
        body = ok.json()["data"]
        assert set(body) == {"avid", "task_id", "status", "file_size"}
        assert body["avid"] == "ABC-123" and JOB_ID.match(body["task_id"])
        assert body["status"] == "pending" and body["file_size"] is None
        job = jobstates.Jobs(r).get(body["task_id"])
        assert job["kind"] == "download" and job["status"] == "queued"

        again = c.post("/nassav/api/downloads/ABC-123")
        assert again.status_code == 409 and again.json()["code"] == 409
        assert again.json()["data"] == {"avid": "ABC-123", "task_id": body["task_id"], "status": "exists",
                                        "file_size": None}

        done = c.post("/nassav/api/downloads/has-001")
        assert done.status_code == 409 and done.json()["code"] == 409
        assert done.json()["data"] == {"avid": "HAS-001", "task_id": None, "status": "completed", "file_size": 1024}

        bad = c.post("/nassav/api/downloads/not%20an%20avid!")
        assert bad.status_code == 400 and "accepted forms" in bad.json()["message"]


def test_post_downloads_batch_submit(tmp_path, r, redis_url):
    """ResourcesView/ActorDetailView/GenreDetailView batch download: a 2xx answer with one
    result per AVID."""
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    with gateway(data, redis_url) as c:
        res = c.post("/nassav/api/downloads/batch_submit",
                     json={"avids": ["abc-001", "ABC001", "has-001", "bad avid!"]})
        assert res.status_code == 200 and res.json()["code"] == 200
        results = res.json()["data"]["results"]
        assert [set(x) for x in results] == [{"avid", "code", "message", "task_id"}] * 4
        assert [x["code"] for x in results] == [202, 409, 409, 400]
        assert [x["avid"] for x in results[:3]] == ["ABC-001", "ABC-001", "HAS-001"]
        assert JOB_ID.match(results[0]["task_id"]) and results[1]["task_id"] == results[0]["task_id"]
        assert results[2]["task_id"] is None and results[3]["task_id"] is None
        assert "accepted forms" in results[3]["message"]
        assert res.json()["data"]["accepted"] == 1 and res.json()["data"]["refused"] == 3

        for bad in ({"avids": []}, {"avids": "ABC-001"}, {}):
            no = c.post("/nassav/api/downloads/batch_submit", json=bad)
            assert no.status_code == 400 and "avids must be a non-empty list" in no.json()["message"]
        no = c.post("/nassav/api/downloads/batch_submit", content=b"[1,", headers={"Content-Type": "application/json"})
        assert no.status_code == 400 and "JSON" in no.json()["message"]


def test_post_downloads_with_the_avid_in_the_body(tmp_path, r, redis_url):
    """The older generation: ``POST /api/downloads`` (its README) and ``/api/downloads/new``
    (its server), ``{"avid": …}`` in the body, the same answers."""
    with gateway(tmp_path / "data", redis_url) as c:
        for path, code in (("/nassav/api/downloads", "abc-002"), ("/nassav/api/downloads/new", "abc-003")):
            ok = c.post(path, json={"avid": code})
            assert ok.status_code == 202, ok.text
            body = ok.json()["data"]
            assert body["avid"] == code.upper() and JOB_ID.match(body["task_id"])
            assert body["status"] == "pending" and body["file_size"] is None
            assert c.post(path, json={"avid": code}).status_code == 409
        missing = c.post("/nassav/api/downloads", json={"id": "abc-004"})
        assert missing.status_code == 400 and '{"avid": "ABC-123"}' in missing.json()["message"]
        assert c.post("/nassav/api/downloads/new", json=["abc-004"]).status_code == 400
        assert c.post("/nassav/api/downloads", json={"avid": "../etc"}).status_code == 400


def test_get_tasks_queue_status(tmp_path, r, redis_url):
    """DownloadsView (polling when the socket is down): active tasks with
    ``progress {percent, speed}``, pending tasks, counts; metadata jobs are not downloads."""
    with gateway(tmp_path / "data", redis_url) as c:
        first = c.post("/nassav/api/downloads/ABC-010").json()["data"]["task_id"]
        second = c.post("/nassav/api/downloads/ABC-011").json()["data"]["task_id"]
        add = c.post("/api/resource", json={"avid": "ABC-012"})
        assert add.status_code == 202
        # What the download stage writes when it takes a slot and reports progress.
        jobstates.Jobs(r).update(first, status="running", stage="download", slot_since=f"{time.time():.3f}",
                                 percent="42.5", speed="1.5 MB/s", eta="0:00:07")
        res = c.get("/nassav/api/tasks/queue/status")
        assert res.status_code == 200 and res.json()["code"] == 200
        q = res.json()["data"]
        assert (q["active_count"], q["pending_count"], q["total_count"]) == (1, 1, 2)
        [active] = q["active_tasks"]
        assert active["task_id"] == first and active["avid"] == "ABC-010" and active["state"] == "STARTED"
        assert active["task_type"] == "download" and active["created_at"] > 0 and active["time_start"] > 0
        assert active["progress"] == {"percent": 42.5, "speed": "1.5 MB/s", "eta": "0:00:07"}
        [pending] = q["pending_tasks"]
        assert pending["task_id"] == second and pending["avid"] == "ABC-011" and pending["state"] == "PENDING"
        assert "progress" not in pending
        assert q["scheduled_tasks"] == q["pending_tasks"] and q["reserved_tasks"] == []

        # A download still in resolve (running, no slot yet) waits in the old queue.
        jobstates.Jobs(r).update(second, status="running", stage="resolve")
        q = c.get("/nassav/api/tasks/queue/status").json()["data"]
        assert [t["task_id"] for t in q["pending_tasks"]] == [second]

        # nassav's own queue is another shape, and lists the metadata job too.
        own = c.get("/api/tasks/queue/status").json()["data"]
        assert own["total_count"] == 3 and isinstance(own["active_tasks"][0]["progress"], float)
