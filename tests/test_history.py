"""Per-stage history: reading source outcomes back, folding stage rows into the index in any
order and any number of times, and the retry route's refusals (real Redis, real SQLite)."""

from __future__ import annotations

import random

from gateway.api.retry import retry_stage
from gateway.history_stages import from_event, rows, source_outcome
from gateway.index import LibraryIndex
from gateway.attempts import fold
from pipeline.errors import LayoutChanged, SourceBlocked, SourceBlockedByUser, SourceNotFound
from pipeline.events import Event
from pipeline.jobs import Jobs
from tests.api_helpers import gateway, settle


def test_source_outcomes_are_read_back_from_their_messages():
    for err, outcome in ((SourceNotFound("jable", "ABC-1", "no such page", status=404), "not found"),
                         (SourceBlocked("missav", "ABC-1", "challenge page (a: b)", status=403), "blocked"),
                         (LayoutChanged("memo", "ABC-1"), "layout changed"),
                         (SourceBlockedByUser("kanav", "ABC-1", "not asked for this title"), "blocked by the user")):
        got = source_outcome(str(err))
        assert (got["source"], got["outcome"]) == (err.source, outcome), str(err)
        assert got["detail"] == ", ".join(p for p in (f"HTTP {err.status}" if err.status else "", err.detail) if p)
    assert source_outcome("jable: found") == {"source": "jable", "outcome": "found", "detail": ""}
    assert source_outcome("internal error: boom") is None and source_outcome("disk full") is None


def job_events(job: str = "j1", avid: str = "ABC-001", t: float = 100.0) -> list[Event]:
    not_found = str(SourceNotFound("missav", avid, status=404))
    return [
        Event("1", "queued", avid, job, "queued", t, {"status": "queued", "kind": "download",
                                                      "retry_of": "j0", "start_stage": "resolve"}),
        Event("2", "task_started", avid, job, "resolve", t + 1, {"status": "running", "kind": "download"}),
        Event("3", "stage_started", avid, job, "resolve", t + 1.5, {}),
        Event("4", "stage_finished", avid, job, "resolve", t + 2,
              {"source": "jable", "outcomes": [not_found, "jable: found"]}),
        Event("5", "stage_started", avid, job, "scrape", t + 2.5, {}),
        Event("6", "stage_finished", avid, job, "scrape", t + 3,
              {"catalogue": None, "warnings": [str(LayoutChanged("javbus", avid, "no title"))]}),
        Event("7a", "stage_started", avid, job, "download-wait", t + 3.5, {"message": "waiting for a download slot"}),
        Event("7", "stage_started", avid, job, "download", t + 4, {}),
        Event("8", "stage_started", avid, job, "download", t + 6, {}),  # a retried stage starts again
        Event("9", "stage_finished", avid, job, "download", t + 10, {"bytes": 12345, "duration_s": 4.0}),
        Event("10", "task_completed", avid, job, "download", t + 10.1, {"status": "completed"}),
    ]


def test_stage_rows_fold_the_same_in_any_order_and_redelivery(tmp_path):
    events = job_events()
    assert from_event(Event("1", "queued", "ABC-001", "j2", "queued", 1, {"kind": "download"})) is None
    found = from_event(Event("1", "queued", "ABC-001", "j3", "queued", 1, {"kind": "metadata", "subscription": "s1"}))
    assert found.detail == {"kind": "metadata", "subscription": "s1"}
    index = LibraryIndex(tmp_path / "a")
    index.record_attempts(fold(events))
    index.record_stages(rows(events))
    want, total = index.history("ABC-001")
    assert total == 1
    stages = {s["stage"]: s for s in want[0]["stages"]}
    assert [s["stage"] for s in want[0]["stages"]] == ["queued", "resolve", "scrape", "download"]
    assert stages["queued"]["detail"] == {"kind": "download", "retry_of": "j0", "start_stage": "resolve"}
    assert stages["resolve"]["outcome"] == "found" and stages["resolve"]["took_s"] == 0.5
    assert [(s["source"], s["outcome"]) for s in stages["resolve"]["sources"]] == \
        [("missav", "not found"), ("jable", "found")]
    assert stages["scrape"]["outcome"] == "not found"
    assert stages["scrape"]["sources"] == [{"source": "javbus", "outcome": "layout changed", "detail": "no title"}]
    d = stages["download"]
    assert (d["started_at"], d["took_s"], d["bytes"], d["video_duration_s"]) == (104.0, 6.0, 12345, 4.0)
    index.close()

    rng = random.Random(11)
    for n in range(20):
        shuffled = events + rng.sample(events, 5)
        rng.shuffle(shuffled)
        other = LibraryIndex(tmp_path / f"b{n}")
        cut = rng.randrange(1, len(shuffled))
        for batch in (shuffled[:cut], shuffled[cut:]):  # as the projection's batches come
            other.record_attempts(fold(batch))
            other.record_stages(rows(batch))
        assert other.history("ABC-001")[0] == want
        other.close()


def test_a_failure_ends_its_stage_with_each_source_s_reason(tmp_path):
    reasons = [str(SourceNotFound("jable", "ABC-002", status=404)), str(SourceBlocked("missav", "ABC-002", status=403))]
    events = [Event("1", "stage_started", "ABC-002", "j9", "resolve", 5.0, {}),
              Event("2", "task_failed", "ABC-002", "j9", "resolve", 6.0,
                    {"status": "failed", "message": "; ".join(reasons), "reasons": reasons,
                     "error": "AllSourcesFailed"})]
    index = LibraryIndex(tmp_path)
    index.record_attempts(fold(events))
    index.record_stages(rows(events))
    (job,), _ = index.history("ABC-002")
    (stage,) = job["stages"]
    assert (job["status"], stage["stage"], stage["outcome"]) == ("failed", "resolve", "failed")
    assert [(s["source"], s["outcome"], s["detail"]) for s in stage["sources"]] == \
        [("jable", "not found", "HTTP 404"), ("missav", "blocked", "HTTP 403")]
    assert stage["detail"] == {"error": "AllSourcesFailed"}
    index.close()


def test_retry_stage_maps_event_stages_onto_the_chain():
    names = ["resolve", "scrape", "cover", "download"]
    assert [retry_stage(s, names) for s in ("resolve", "cover", "download", "download-wait", "re-resolve",
                                             "queued", "")] == \
        ["resolve", "cover", "download", "download", "download", "resolve", "resolve"]


def test_retry_refuses_while_a_job_holds_the_avid_and_when_nothing_failed_or_was_cancelled(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        held = jobs.submit("RTY-001")
        res = c.post("/api/resource/RTY-001/retry")
        assert res.status_code == 409 and held.job_id in res.json()["message"]
        jobs.finish(held.job_id, "RTY-001", "completed", message="done", stage="download")
        settle(c)
        res = c.post("/api/resource/RTY-001/retry")  # (a cancelled one is: tests/test_retry_options.py)
        assert res.status_code == 400 and "is completed; only a failed or cancelled job" in res.json()["message"]
        assert c.post("/api/resource/not%20an%20avid!/retry").status_code == 400

        # A failed metadata job is retried as a metadata job, from its failed stage.
        failed = jobs.submit("RTY-001", "metadata")
        jobs.finish(failed.job_id, "RTY-001", "failed", message="cover: broken", stage="cover")
        settle(c)
        res = c.post("/api/resource/RTY-001/retry")
        assert res.status_code == 202, res.json()
        data = res.json()["data"]
        assert (data["stage"], data["kind"], data["retry_of"]) == ("cover", "metadata", failed.job_id)
        record = jobs.get(data["job_id"])
        assert (record["kind"], record["start_stage"], record["retry_of"]) == ("metadata", "cover", failed.job_id)
        assert c.post("/api/resource/RTY-001/retry").status_code == 409  # the new job holds it
        # /attempts is the same route as /history.
        assert c.get("/api/resource/RTY-001/attempts").json() == c.get("/api/resource/RTY-001/history").json()


def test_a_failed_import_is_not_retried_as_a_chain_job(tmp_path, r, redis_url):
    """An import's title job has no chain stage to start again (its files are placed by the
    import run): retry answers 400 naming how to run the import again, and queues nothing."""
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        failed = jobs.submit("RTY-002", "import", fields={"import_id": "imp-1"})
        jobs.finish(failed.job_id, "RTY-002", "failed", message="no catalogue has it", stage="import")
        settle(c)
        res = c.post("/api/resource/RTY-002/retry")
        assert res.status_code == 400, res.json()
        assert "POST /api/library/import" in res.json()["message"] and "nassav import" in res.json()["message"]
        assert jobs.live_job("RTY-002") is None
