"""The history of attempts per AVID: folding events (pure), the projection filling the index's
table on a real Redis, and ``GET /api/resource/{avid}/attempts``."""

from __future__ import annotations

import itertools
import random

import asyncio

import redis.asyncio as aioredis

from gateway.attempts import Attempt, Recorder, fold, from_event, merge
from gateway.index import LibraryIndex
from gateway.projection import Projection
from pipeline.events import Event, Events
from pipeline.jobs import Jobs
from pipeline.redis_client import DECODED
from tests.api_helpers import gateway, put_resource, settle
from tests.conftest import wait_for


def lifecycle(job: str = "j1", avid: str = "ABC-001", t: float = 100.0, *, end: str = "completed") -> list[Event]:
    """A download job's events as the stages write them (progress and other stages' ends included)."""
    es = [Event("1", "queued", avid, job, "queued", t, {"status": "queued", "kind": "download"}),
          Event("2", "task_started", avid, job, "resolve", t + 1, {"status": "running", "kind": "download"}),
          Event("3", "stage_started", avid, job, "resolve", t + 1.1, {"worker": "w"}),
          Event("4", "stage_finished", avid, job, "resolve", t + 2, {"source": "jable", "outcomes": []}),
          Event("5", "stage_started", avid, job, "scrape", t + 2.1, {}),
          Event("6", "warning", avid, job, "scrape", t + 3, {"message": "no catalogue entry"}),
          Event("7", "stage_finished", avid, job, "scrape", t + 3.5, {}),
          Event("8", "stage_started", avid, job, "download", t + 4, {}),
          Event("9", "progress_update", avid, job, "download", t + 5, {"percent": 50})]
    if end == "completed":
        es.append(Event("10", "task_completed", avid, job, "download", t + 9,
                        {"status": "completed", "message": f"{avid} done"}))
    elif end:
        es.append(Event("10", "task_failed", avid, job, "download", t + 9, {"status": end, "message": "it broke"}))
    return es


def folded(events: list[Event]) -> Attempt:
    out = None
    for e in events:
        a = from_event(e)
        if a is not None:
            out = merge(out, a)
    return out


def test_a_lifecycle_folds_to_its_outcome():
    a = folded(lifecycle())
    assert a.as_item() == {"job_id": "j1", "avid": "ABC-001", "kind": "download", "started_at": 100.0,
                           "ended_at": 109.0, "status": "completed", "stage": "download",
                           "message": "ABC-001 done", "source": "jable"}
    running = folded(lifecycle(end=""))
    assert (running.status, running.stage, running.ended_at) == ("running", "download", None)
    assert running.message == "no catalogue entry"  # the last warning while it runs
    failed = folded(lifecycle(end="failed"))
    assert (failed.status, failed.message, failed.stage) == ("failed", "it broke", "download")
    # Progress and library events (no job) say nothing about an attempt.
    assert from_event(Event("1", "progress_update", "ABC-001", "j1", "download", 1, {})) is None
    assert from_event(Event("1", "video_deleted", "ABC-001", "", "library", 1, {})) is None


def test_order_and_redelivery_do_not_change_the_row():
    # The projection delivers at least once and may replay pending entries after newer ones.
    events = lifecycle()
    want = folded(events)
    rng = random.Random(7)
    for _ in range(200):
        shuffled = events + rng.sample(events, 4)  # some delivered twice
        rng.shuffle(shuffled)
        assert folded(shuffled) == want
    # Folding a batch first and merging the batches gives the same as event by event.
    for cut in range(1, len(events)):
        a, b = fold(events[:cut]), fold(events[cut:])
        assert merge(a.get("j1"), b["j1"]) == want if "j1" in b else a["j1"] == want


def test_a_redelivered_queued_never_takes_a_job_back():
    for ended in ("", "cancelled"):
        es = lifecycle(end=ended)
        later = folded(es + [es[0]])
        assert later.status == ("running" if not ended else "cancelled")


def test_fold_keeps_jobs_apart():
    events = list(itertools.chain(lifecycle("j1", "ABC-001", 100), lifecycle("j2", "ABC-001", 200, end="failed"),
                                  lifecycle("j3", "XYZ-002", 150, end="")))
    out = fold(events)
    assert {j: (a.avid, a.status) for j, a in out.items()} == {
        "j1": ("ABC-001", "completed"), "j2": ("ABC-001", "failed"), "j3": ("XYZ-002", "running")}


def test_the_recorder_holds_back_only_submissions():
    now = [0.0]
    rec = Recorder(delay_s=0.5, clock=lambda: now[0])
    queued = [e for e in lifecycle("j1")[:1]] + [e for e in lifecycle("j2", t=101)[:1]]
    assert rec.add(queued) == {} and rec.waiting and not rec.due()
    now[0] = 0.4
    assert rec.add(lifecycle("j3", t=102)[:1]) == {}  # still within the delay of the first
    now[0] = 0.5
    assert rec.due()
    got = rec.add([])
    assert set(got) == {"j1", "j2", "j3"} and not rec.waiting
    # Anything but "queued" is written at once, with what was held.
    rec.add(lifecycle("j4", t=103)[:1])
    got = rec.add(lifecycle("j1")[1:3])
    assert set(got) == {"j1", "j4"} and got["j1"].status == "running"
    # The caller writes anyway (a folder changed): held submissions ride along.
    rec.add(lifecycle("j5", t=104)[:1])
    assert set(rec.add([], writing=True)) == {"j5"}
    # A failed write puts them back, beside whatever came meanwhile.
    taken = rec.add(lifecycle("j6", t=105)[:2])
    assert set(taken) == {"j6"} and not rec.waiting
    rec.add(lifecycle("j7", t=106)[:1])
    rec.hold(taken)
    back = rec.take()
    assert back["j6"] == folded(lifecycle("j6", t=105)[:2]) and back["j7"].status == "queued"


# -- on a real Redis, through the real projection and API --------------------------------------

def test_held_submissions_are_written_soon_and_at_stop(tmp_path, r, redis_url):
    index = LibraryIndex(tmp_path / "data")
    events = Events(r)

    async def scenario():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        p = Projection(client, index, consumer="t")
        await p.ensure_group()
        try:
            await p.start()
            await asyncio.wait_for(p.ready.wait(), 10)
            events.emit("queued", avid="SUB-001", job_id="s1", stage="queued", data={"kind": "download"})
            # Acknowledged at once (the metrics count it); written within the delay.
            await asyncio.sleep(0.1)
            assert index.attempts("SUB-001")[1] == 0
            for _ in range(60):
                if index.attempts("SUB-001")[1] == 1:
                    break
                await asyncio.sleep(0.05)
            assert index.attempts("SUB-001")[0][0]["status"] == "queued"
            # One more, and the gateway stops before the delay is up: written on the way out.
            events.emit("queued", avid="SUB-002", job_id="s2", stage="queued", data={"kind": "metadata"})
            for _ in range(100):
                if p.attempts.waiting:
                    break
                await asyncio.sleep(0.01)
            assert p.attempts.waiting
        finally:
            await p.stop()
            await client.aclose()
        assert index.attempts("SUB-002")[0][0]["kind"] == "metadata"

    asyncio.run(scenario())
    index.close()


def test_the_api_lists_attempts_newest_first(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001")
    events, jobs = Events(r), Jobs(r)
    with gateway(data, redis_url) as c:
        # Three attempts: one completed, one failed, one cancelled by the user before it ran.
        first = jobs.submit("ABC-001", "metadata").job_id
        events.emit("task_started", avid="ABC-001", job_id=first, stage="resolve",
                    data={"status": "running", "kind": "metadata"})
        events.emit("stage_finished", avid="ABC-001", job_id=first, stage="resolve", data={"source": "missav"})
        events.emit("stage_started", avid="ABC-001", job_id=first, stage="cover")
        jobs.finish(first, "ABC-001", "completed", message="ABC-001 done", stage="cover")
        second = jobs.submit("ABC-001", "download").job_id
        events.emit("task_started", avid="ABC-001", job_id=second, stage="resolve",
                    data={"status": "running", "kind": "download"})
        jobs.finish(second, "ABC-001", "failed", message="missav: not found; jable: blocked", stage="resolve")
        settle(c)
        assert c.post("/api/downloads/ABC-001").status_code == 202  # through the API, no worker runs
        assert c.delete("/api/downloads/ABC-001").status_code in (200, 202)
        settle(c)

        body = c.get("/api/resource/abc-001/attempts").json()
        items = body["data"]
        assert body["pagination"] == {"total": 3, "page": 1, "page_size": 20, "pages": 1}
        assert [i["status"] for i in items] == ["cancelled", "failed", "completed"]
        cancelled, failed, done = items
        assert cancelled["kind"] == "download" and cancelled["stage"] == "queued" and cancelled["ended_at"]
        assert failed == {**failed, "job_id": second, "kind": "download", "stage": "resolve",
                          "message": "missav: not found; jable: blocked", "source": ""}
        assert done == {**done, "job_id": first, "kind": "metadata", "stage": "cover", "message": "ABC-001 done",
                        "source": "missav", "avid": "ABC-001"}
        assert done["started_at"] <= done["ended_at"] <= failed["started_at"] <= failed["ended_at"]

        page2 = c.get("/api/resource/ABC-001/attempts?page=2&page_size=2").json()
        assert [i["job_id"] for i in page2["data"]] == [first] and page2["pagination"]["pages"] == 2

        # History outlives the title's files and a rebuild of the index from disk.
        assert c.delete("/api/resource/ABC-001").status_code == 200
        c.st.index.rebuild()
        assert c.get("/api/resource/ABC-001/attempts").json()["pagination"]["total"] == 3
        assert c.get("/api/resource/XYZ-999/attempts").json() == {
            "code": 200, "message": "ok", "data": [],
            "pagination": {"total": 0, "page": 1, "page_size": 20, "pages": 0}}


def test_attempts_refusals(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        bad = c.get("/api/resource/A/attempts")
        assert bad.status_code == 400 and "ABC-123" in bad.json()["message"]
        for q in ("page=0", "page_size=0", "page_size=101", "page=x"):
            r_ = c.get("/api/resource/ABC-001/attempts?" + q)
            assert r_.status_code == 400 and ("page" in r_.json()["message"]), q


def test_a_running_job_shows_its_live_stage(tmp_path, r, redis_url):
    events, jobs = Events(r), Jobs(r)
    with gateway(tmp_path / "data", redis_url) as c:
        job = jobs.submit("RUN-001", "download").job_id
        wait_for(lambda: c.get("/api/resource/RUN-001/attempts").json()["data"], 5, 0.05,
                 "the submission in the history")
        assert c.get("/api/resource/RUN-001/attempts").json()["data"][0]["status"] == "queued"
        events.emit("task_started", avid="RUN-001", job_id=job, stage="resolve", data={"status": "running"})
        events.emit("stage_started", avid="RUN-001", job_id=job, stage="download")
        events.emit("warning", avid="RUN-001", job_id=job, stage="download", data={"message": "slow CDN"})
        for p in range(5):
            events.emit("progress_update", avid="RUN-001", job_id=job, stage="download", data={"percent": p})
        settle(c)
        (item,) = c.get("/api/resource/RUN-001/attempts").json()["data"]
        assert (item["status"], item["stage"], item["message"], item["ended_at"]) == \
            ("running", "download", "slow CDN", None)
