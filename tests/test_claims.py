"""Claims and the job transitions (submit, finish, cancel) on a real Redis, through both fronts."""

import asyncio
import threading

import redis.asyncio

from pipeline import events as ev, jobs as jobstates
from pipeline.claims import Claims, claim_key
from pipeline.jobs import CANCELLED, COMPLETED, FAILED, AsyncJobs, Jobs, queue_status
from pipeline.lua import RELEASE_IF_HELD
from pipeline.mutex import Mutex


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


def test_queue_status_shape(r):
    jobs = Jobs(r)
    a = jobs.submit("ABC-001")
    jobs.submit("ABC-002")
    jobs.update(a.job_id, status="running", percent=42.5)
    qs = queue_status(jobs.active())
    assert qs["active_count"] == 1 and qs["pending_count"] == 1 and qs["total_count"] == 2
    assert qs["active_tasks"][0]["avid"] == "ABC-001"
    assert qs["active_tasks"][0]["progress"] == 42.5
