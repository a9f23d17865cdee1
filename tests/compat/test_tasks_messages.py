"""The old client's messages made from nassav's events and job records (pure functions), and
the job-kind lookup on the real Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.compat.messages import kind_in, old_queue, translate
from gateway.compat.task_socket import JobKinds, old_messages
from pipeline import events as ev, jobs as jobstates
from pipeline.events import Event
from pipeline.redis_client import DECODED


def event(type_: str, job_id: str = "j1", stage: str = "", avid: str = "ABC-001", **data) -> Event:
    return Event(id="1-0", type=type_, avid=avid, job_id=job_id, stage=stage, data=data)


def test_only_download_jobs_speak_and_only_in_old_words():
    # nassav's own task_started comes when a job's first stage starts: not a download yet.
    assert translate(event(ev.TASK_STARTED, stage="resolve", kind="download"), "download") == (None, False)
    assert translate(event(ev.QUEUED, kind="download"), "download") == (None, True)
    assert translate(event(ev.STAGE_STARTED, stage="download"), "download") == (
        {"type": "task_started", "data": {"task_id": "j1", "avid": "ABC-001", "status": "started"}}, True)
    assert translate(event(ev.STAGE_STARTED, stage="download-wait"), "download") == (None, False)
    msg, changed = translate(event(ev.PROGRESS, stage="download", percent=12.5, speed="1.0 MB/s", eta="0:00:09",
                                   bytes_done=5, segments_done=1), "download")
    assert not changed and msg == {"type": "progress_update", "data": {
        "task_id": "j1", "avid": "ABC-001", "percent": 12.5, "speed": "1.0 MB/s", "eta": "0:00:09"}}
    assert translate(event(ev.PROGRESS, percent="x"), "download")[0]["data"]["percent"] == 0.0
    assert translate(event(ev.TASK_COMPLETED, status="completed", message="ABC-001 done"), "download") == (
        {"type": "task_completed", "data": {"task_id": "j1", "avid": "ABC-001", "status": "success",
                                            "message": "ABC-001 done"}}, True)
    failed, _ = translate(event(ev.TASK_FAILED, status="failed", message="missav: not found", error="AllSourcesFailed"),
                          "download")
    assert failed["data"]["error"] == "missav: not found" and failed["data"]["status"] == "failed"
    cancelled, _ = translate(event(ev.TASK_FAILED, status="cancelled", message="cancelled before it started"),
                             "download")
    assert cancelled["data"]["status"] == "cancelled" and cancelled["data"]["error"]
    for t in (ev.STAGE_FINISHED, ev.WARNING, "video_deleted"):
        assert translate(event(t, stage="download"), "download") == (None, False)
    # A metadata job (add, refresh) or an event of no job says nothing at all.
    for t in (ev.QUEUED, ev.TASK_STARTED, ev.TASK_COMPLETED, ev.TASK_FAILED):
        assert translate(event(t), "metadata") == (None, False)
    assert translate(event(ev.TASK_COMPLETED, job_id=""), "download") == (None, False)


def test_kind_in_events():
    assert kind_in(event(ev.QUEUED, kind="metadata")) == "metadata"
    assert kind_in(event(ev.PROGRESS)) == "download"
    assert kind_in(event(ev.STAGE_STARTED, stage="download")) == "download"
    assert kind_in(event(ev.STAGE_STARTED, stage="resolve")) == ""
    assert kind_in(event(ev.TASK_COMPLETED)) == ""


def test_old_queue_from_job_records():
    jobs = [
        {"job_id": "a", "avid": "ABC-001", "kind": "download", "status": "running", "stage": "download",
         "slot_since": "1700000000.5", "percent": "33.3", "speed": "2.0 MB/s", "eta": "0:01:00", "created_at": "1"},
        {"job_id": "b", "avid": "ABC-002", "kind": "download", "status": "running", "stage": "download",
         "slot_since": "", "percent": "0", "created_at": "2"},  # waiting for a slot
        {"job_id": "c", "avid": "ABC-003", "kind": "metadata", "status": "running", "stage": "scrape"},
        {"job_id": "d", "avid": "ABC-004", "kind": "download", "status": "queued", "created_at": "bad"},
    ]
    q = old_queue(jobs)
    assert [t["task_id"] for t in q["active_tasks"]] == ["a"]
    assert [t["task_id"] for t in q["pending_tasks"]] == ["b", "d"]
    assert (q["active_count"], q["pending_count"], q["total_count"]) == (1, 2, 3)
    assert q["active_tasks"][0] == {"task_id": "a", "avid": "ABC-001", "task_type": "download", "created_at": 1.0,
                                    "state": "STARTED", "time_start": 1700000000.5,
                                    "progress": {"percent": 33.3, "speed": "2.0 MB/s", "eta": "0:01:00"}}
    assert q["pending_tasks"][1] == {"task_id": "d", "avid": "ABC-004", "task_type": "download",
                                     "created_at": 0.0, "state": "PENDING"}
    assert old_queue([])["total_count"] == 0


def test_a_batch_becomes_messages_each_task_event_followed_by_the_queue(r, redis_url):
    async def run():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        try:
            jobs = jobstates.AsyncJobs(client)
            dl = await jobs.submit("ABC-001", "download")
            meta = await jobs.submit("ABC-002", "metadata")
            reads = []

            async def queue_status():
                reads.append(1)
                return {"active_tasks": [], "pending_tasks": [], "active_count": 0, "pending_count": 0,
                        "total_count": len(reads)}
            # End events carry no kind: the kinds come from the job records in Redis.
            batch = [event(ev.STAGE_STARTED, dl.job_id, "download"),
                     event(ev.PROGRESS, dl.job_id, "download", percent=50.0, speed="1 MB/s", eta=""),
                     event(ev.TASK_COMPLETED, meta.job_id, "cover", avid="ABC-002", status="completed"),
                     event(ev.TASK_COMPLETED, dl.job_id, "download", status="completed", message="done"),
                     event(ev.WARNING, "", "cookie", avid="")]
            kinds = JobKinds(client)
            out = await old_messages(batch, kinds, queue_status)
            assert kinds.known[meta.job_id] == "metadata" and kinds.known[dl.job_id] == "download"
            return out, reads
        finally:
            await client.aclose()

    out, reads = asyncio.run(run())
    assert [m["type"] for m in out] == ["task_started", "queue_status", "progress_update",
                                        "task_completed", "queue_status"]
    assert len(reads) == 1  # the queue is read once per batch
    assert out[0]["data"]["total_count"] == 1 and out[0]["data"]["status"] == "started"
    assert out[3]["data"]["task_id"] != "" and out[3]["data"]["avid"] == "ABC-001"


def test_queued_downloads_share_one_queue_status(r, redis_url):
    """A batch submit is one ``queue_status``, not one per AVID; a task event in the same batch
    is still followed by its own."""
    async def run():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        try:
            jobs = jobstates.AsyncJobs(client)
            ids = [(await jobs.submit(f"ABC-10{i}", "download")).job_id for i in range(3)]

            async def queue_status():
                return {"total_count": 3}
            queued = [event(ev.QUEUED, j, kind="download") for j in ids]
            kinds = JobKinds(client)
            alone = await old_messages(queued, kinds, queue_status)
            failed = event(ev.TASK_FAILED, ids[0], "resolve", status="failed", message="missav: not found")
            mixed = await old_messages([*queued, failed], kinds, queue_status)
            return alone, mixed
        finally:
            await client.aclose()

    alone, mixed = asyncio.run(run())
    assert alone == [{"type": "queue_status", "data": {"total_count": 3}}]
    assert [m["type"] for m in mixed] == ["task_failed", "queue_status"]
