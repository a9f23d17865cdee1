"""Jobs through the API on a real Redis: submit, cancel (queued and running), batch, queue status."""

from __future__ import annotations

import redis.asyncio

from pipeline import jobs as jobstates
from pipeline.claims import claim_key
from pipeline.events import Events
from tests.api_helpers import gateway, put_resource


def test_submit_conflicts_and_validation(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    with gateway(data, redis_url) as c:
        ok = c.post("/api/downloads/abc123")
        assert ok.status_code == 202 and ok.json()["code"] == 202
        job = ok.json()["data"]["job_id"]
        assert ok.json()["data"]["avid"] == "ABC-123" and ok.json()["data"]["task_id"] == job
        again = c.post("/api/downloads/ABC-123")
        assert again.status_code == 409 and again.json()["data"]["job_id"] == job
        done = c.post("/api/downloads/HAS-001")
        assert done.status_code == 409 and done.json()["data"]["status"] == "downloaded"
        bad = c.post("/api/downloads/not%20an%20avid!")
        assert bad.status_code == 400 and "accepted forms" in bad.json()["message"]
        assert c.get("/api/downloads/ABC-123").status_code == 405
        assert c.get("/api/downloads/ABC-123").json()["code"] == 405


def test_cancel_a_queued_job_releases_its_claim(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        job = c.post("/api/downloads/CAN-001").json()["data"]["job_id"]
        res = c.delete("/api/downloads/can-001")
        assert res.status_code == 200 and res.json()["data"]["status"] == "cancelled"
        assert r.get(claim_key("CAN-001")) is None
        rec = jobstates.Jobs(r).get(job)
        assert rec["status"] == "cancelled" and rec["cancel"] == "1"
        assert not r.zscore(jobstates.ACTIVE, job)
        ends = [e for e in Events(r).after("0") if e.job_id == job and e.type == "task_failed"]
        assert len(ends) == 1 and ends[0].data["status"] == "cancelled"
        # The AVID can be submitted again at once.
        assert c.post("/api/downloads/CAN-001").status_code == 202
        assert c.delete("/api/downloads/NONE-001").status_code == 404
        assert c.delete("/api/downloads/x y").status_code == 400


def test_cancel_a_running_job_flags_it_for_the_worker(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        job = c.post("/api/downloads/RUN-001").json()["data"]["job_id"]
        jobstates.Jobs(r).update(job, status="running", stage="download")
        res = c.delete("/api/downloads/RUN-001")
        assert res.status_code == 202 and res.json()["data"]["status"] == "cancelling"
        rec = jobstates.Jobs(r).get(job)
        assert rec["cancel"] == "1" and rec["status"] == "running"
        assert r.get(claim_key("RUN-001")) == job  # the worker ends it and releases


def test_batch_submit_and_queue_status(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    with gateway(data, redis_url) as c:
        res = c.post("/api/downloads/batch_submit", json={"avids": ["B-001", "b-002", "HAS-001", "??", 7]})
        assert res.status_code == 202
        results = res.json()["data"]["results"]
        assert [x["code"] for x in results] == [202, 202, 409, 400, 400]
        assert res.json()["data"]["accepted"] == 2
        for body in ({}, {"avids": []}, {"avids": "B-001"}, {"avids": ["A-1"] * 501}):
            assert c.post("/api/downloads/batch_submit", json=body).status_code == 400
        assert c.post("/api/downloads/batch_submit", content=b"nope", headers={"content-type": "application/json"}).status_code == 400

        q = c.get("/api/tasks/queue/status").json()["data"]
        assert q["pending_count"] == 2 and q["active_count"] == 0 and q["total_count"] == 2
        assert {t["avid"] for t in q["pending_tasks"]} == {"B-001", "B-002"}
        assert q["queues"]["metadata"]["ready"] == 2 and q["queues"]["download"]["ready"] == 0


def test_redis_down_is_503_not_500(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        st = c.st
        real, real_jobs = st.redis, st.jobs
        st.redis = redis.asyncio.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
        st.jobs = jobstates.AsyncJobs(st.redis)  # job reads and transitions go through it
        try:
            for res in (c.get("/api/tasks/queue/status"), c.delete("/api/downloads/ABC-999"),
                        c.get("/api/workers")):
                assert res.status_code == 503 and res.json()["code"] == 503
        finally:
            st.redis, st.jobs = real, real_jobs


def test_a_submit_that_cannot_be_enqueued_leaves_no_claim_behind(tmp_path, r, redis_url):
    from actors.registry import declare
    from pipeline.broker import make_broker

    with gateway(tmp_path / "data", redis_url) as c:
        st = c.st
        real = st.actors
        # A real broker on a Redis that is not there: the send fails after the job was created.
        dead = make_broker("redis://127.0.0.1:1", st.config.workers, socket_timeout_s=0.5)
        st.actors = declare(dead, st.config)
        try:
            res = c.post("/api/downloads/ENQ-001")
        finally:
            st.actors = real
            dead.close()
        assert res.status_code == 503 and res.json()["code"] == 503
        assert r.get(claim_key("ENQ-001")) is None
        ends = [e for e in Events(r).after("0") if e.avid == "ENQ-001" and e.type == "task_failed"]
        assert len(ends) == 1 and ends[0].data["message"].startswith("could not enqueue")
        rec = jobstates.Jobs(r).get(ends[0].job_id)
        assert rec["status"] == jobstates.FAILED and not r.zscore(jobstates.ACTIVE, ends[0].job_id)
        assert c.post("/api/downloads/ENQ-001").status_code == 202


def test_the_app_state_has_everything_handlers_may_use(tmp_path, r, redis_url):
    from gateway.api.common import ApiState

    members = {n for n in vars(ApiState) if not n.startswith("_")} | set(ApiState.__annotations__)
    assert {"jobs", "redis", "submit", "queue_status"} <= members
    with gateway(tmp_path / "data", redis_url) as c:
        for name in members:
            assert getattr(c.st, name) is not None, name
