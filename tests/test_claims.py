"""Claims and the job transitions (submit, finish, cancel) on a real Redis, through both fronts."""

import asyncio
import threading

import redis.asyncio

from pipeline import events as ev, jobs as jobstates
from pipeline.claims import Claims, claim_key
from pipeline.jobs import CANCELLED, COMPLETED, FAILED, AsyncJobs, Jobs, queue_status
from pipeline.lua import RELEASE_IF_HELD
from pipeline.mutex import Mutex
from pipeline.redis_client import DECODED


def _race(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_twenty_threads_one_submit_wins_with_one_job_and_one_event(r):
    jobs = Jobs(r)
    results = _race(20, lambda i: jobs.submit("ABC-123"))
    accepted = [x for x in results if x.accepted]
    assert len(accepted) == 1
    assert {x.job_id for x in results} == {accepted[0].job_id}
    assert len(jobs.active()) == 1
    queued = [e for e in ev.Events(r).after("0") if e.type == ev.QUEUED]
    assert len(queued) == 1 and queued[0].job_id == accepted[0].job_id


def test_release_only_by_holder(r):
    claims, jobs = Claims(r), Jobs(r)
    a = jobs.submit("ABC-123")
    assert claims.release("ABC-123", "b") is False
    assert claims.holder("ABC-123") == a.job_id
    assert claims.release("ABC-123", a.job_id) is True
    assert jobs.submit("ABC-123").accepted


def test_finish_releases_claim_and_emits_event(r):
    jobs = Jobs(r)
    res = jobs.submit("ABC-123")
    jobs.finish(res.job_id, "ABC-123", COMPLETED, message="done", stage="download")
    assert Claims(r).holder("ABC-123") is None
    assert jobs.get(res.job_id)["status"] == COMPLETED
    assert jobs.active() == []
    assert r.ttl(f"nassav:job:{res.job_id}") > 0
    last = ev.Events(r).after("0")[-1]
    assert (last.type, last.job_id, last.data["status"]) == (ev.TASK_COMPLETED, res.job_id, COMPLETED)
    # A late finish of an older job must not free a newer job's claim.
    new = jobs.submit("ABC-123")
    jobs.finish(res.job_id, "ABC-123", FAILED, message="late")
    assert Claims(r).holder("ABC-123") == new.job_id


def test_reap_frees_claims_whose_job_is_gone(r):
    jobs, claims = Jobs(r), Claims(r)
    live = jobs.submit("ABC-001")
    r.set(claim_key("ABC-002"), "ghost")  # a claim with no job behind it
    done = jobs.submit("ABC-003")
    r.hset(f"nassav:job:{done.job_id}", "status", COMPLETED)
    freed = claims.reap(jobs.is_live)
    assert sorted(freed) == ["ABC-002", "ABC-003"]
    assert claims.holder("ABC-001") == live.job_id


def test_a_record_without_status_is_no_live_job(r):
    # What a late progress update leaves when it outlives its job: it must not hold the claim.
    jobs = Jobs(r)
    r.hset(jobstates.job_key("late"), "percent", "5")
    r.set(claim_key("ABC-004"), "late")
    assert jobs.is_live("late") is False and jobs.live_job("ABC-004") is None
    assert Claims(r).reap(jobs.is_live) == ["ABC-004"]


def test_queue_status_shape(r):
    jobs = Jobs(r)
    a = jobs.submit("ABC-001")
    jobs.submit("ABC-002")
    jobs.update(a.job_id, status="running", percent=42.5)
    qs = queue_status(jobs.active())
    assert qs["active_count"] == 1 and qs["pending_count"] == 1 and qs["total_count"] == 2
    assert qs["active_tasks"][0]["avid"] == "ABC-001"
    assert qs["active_tasks"][0]["progress"] == 42.5


def _on_loop(redis_url, fn):
    """Run ``await fn(AsyncJobs)`` on a fresh loop with its own async client."""
    async def go():
        client = redis.asyncio.Redis.from_url(redis_url, **DECODED)
        try:
            return await fn(AsyncJobs(client))
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_async_front_runs_the_same_scripts(r, redis_url):
    async def twenty_submits(jobs):
        return await asyncio.gather(*(jobs.submit("ASY-001", "metadata", fields={"source_pref": "x"})
                                      for _ in range(20)))

    results = _on_loop(redis_url, twenty_submits)
    accepted = [x for x in results if x.accepted]
    assert len(accepted) == 1 and {x.job_id for x in results} == {accepted[0].job_id}
    job_id = accepted[0].job_id
    # The extra fields are on the record written by the submit script itself.
    rec = Jobs(r).get(job_id)
    assert (rec["status"], rec["kind"], rec["source_pref"]) == (jobstates.QUEUED, "metadata", "x")
    assert _on_loop(redis_url, lambda jobs: jobs.live_job("ASY-001")) == job_id
    assert [j["job_id"] for j in _on_loop(redis_url, lambda jobs: jobs.active())] == [job_id]

    event_id = _on_loop(redis_url, lambda jobs: jobs.finish(job_id, "ASY-001", COMPLETED, stage="cover"))
    last = ev.Events(r).after("0")[-1]
    assert (last.id, last.type, last.job_id) == (event_id, ev.TASK_COMPLETED, job_id)
    assert Claims(r).holder("ASY-001") is None and Jobs(r).get(job_id)["percent"] == "100"
    assert _on_loop(redis_url, lambda jobs: jobs.live_job("ASY-001")) is None
    assert _on_loop(redis_url, lambda jobs: jobs.is_live(job_id)) is False


def test_cancel_a_queued_job_ends_it_with_the_finish_tail(r):
    jobs = Jobs(r)
    job_id = jobs.submit("CAN-001").job_id
    res = jobs.cancel("CAN-001", "not wanted")
    assert (res.outcome, res.job_id) == (jobstates.CANCELLED_NOW, job_id)
    rec = jobs.get(job_id)
    assert (rec["status"], rec["message"], rec["cancel"]) == (CANCELLED, "not wanted", "1")
    assert rec["finished_at"] and r.ttl(jobstates.job_key(job_id)) > 0
    assert Claims(r).holder("CAN-001") is None and jobs.active() == []
    last = ev.Events(r).after("0")[-1]
    assert last.id == res.detail
    assert (last.type, last.stage, last.data) == (ev.TASK_FAILED, jobstates.QUEUED,
                                                   {"status": CANCELLED, "message": "not wanted"})
    assert jobs.cancel("CAN-001") == jobstates.CancelResult(jobstates.GONE, "")


def test_cancel_a_running_job_only_flags_it_and_an_ended_job_says_so(r):
    jobs = Jobs(r)
    job_id = jobs.submit("RUN-001").job_id
    jobs.update(job_id, status=jobstates.RUNNING)
    before = len(ev.Events(r).after("0"))
    res = jobs.cancel("RUN-001")
    assert (res.outcome, res.job_id, res.detail) == (jobstates.CANCELLING, job_id, jobstates.RUNNING)
    assert jobs.get(job_id)["cancel"] == "1" and jobs.is_live(job_id)
    assert Claims(r).holder("RUN-001") == job_id and len(ev.Events(r).after("0")) == before
    # Ended but its claim still there (the sweep has not reaped it yet): the cancel says how it ended.
    r.hset(jobstates.job_key(job_id), "status", FAILED)
    assert jobs.cancel("RUN-001") == jobstates.CancelResult(jobstates.ENDED, job_id, FAILED)
    # A claim whose job record is gone.
    r.delete(jobstates.job_key(job_id))
    assert jobs.cancel("RUN-001").outcome == jobstates.GONE


def test_one_compare_and_delete_serves_claims_and_the_mutex(r):
    claims, mutex = Claims(r), Mutex(r, name="cad", ttl_ms=5000)
    assert claims._release.script == mutex._release.script == RELEASE_IF_HELD
    assert RELEASE_IF_HELD.split("return release_if_held")[0] in jobstates.FINISH_SCRIPT
    assert RELEASE_IF_HELD.split("return release_if_held")[0] in jobstates.CANCEL_SCRIPT
    assert mutex.try_acquire()
    other = Mutex(r, name="cad", ttl_ms=5000)
    other.slot = 0  # pretending to own the slot does not let it release the owner's
    assert other.release() is False and r.get(mutex.key(0)) == mutex.token
    r.set(claim_key("CAD-001"), "a")
    assert claims.release("CAD-001", "b") is False and claims.holder("CAD-001") == "a"
    assert mutex.release() is True and r.get(mutex.key(0)) is None
