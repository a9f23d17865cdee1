"""The stage runner's own logic on Dramatiq's StubBroker: which error means retry, fail or
cancel, and which stage comes next. Jobs, claims and events stay on the real Redis.

The stages here are small plain functions that raise what a real stage can raise; the chain
they form is the product's (same names, same queues, same last stage per kind).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from actors.context import Context
from actors.registry import CHAIN, Chain, RetryOutcome, Stage, declare
from pipeline import events as ev
from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE
from pipeline.claims import Claims
from pipeline.config import load
from pipeline.errors import Cancelled, SourceNotFound, UpstreamError

MAX_RETRIES = 2
AVID = "ABC-123"


class Script:
    """What each stage does on each call: an exception to raise, or None to succeed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.plan: dict[str, list[BaseException | None]] = {}
        self.on_call: dict[str, object] = {}
        self.lock = threading.Lock()

    def stage(self, name: str):
        def run(ctx, avid, job_id):
            with self.lock:
                self.calls[name] += 1
                plan = self.plan.get(name) or []
                step = plan.pop(0) if plan else None
            hook = self.on_call.get(name)
            if hook:
                hook(ctx)
            if step is not None:
                raise step
        return run


@pytest.fixture
def runner(tmp_path, r, redis_url):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"data_dir: {tmp_path / 'data'}\nredis_url: {redis_url}\n"
                        f"workers: {{stage_max_retries: {MAX_RETRIES}}}\n"
                        f"download: {{max_retries: {MAX_RETRIES}}}\n")
    config = load(cfg_path, {})
    ctx = Context.create(config, redis_url)
    script = Script()
    chain = Chain(tuple(dataclasses.replace(s, run=script.stage(s.name)) for s in CHAIN.stages), CHAIN.last)
    broker = StubBroker()
    broker.emit_after("process_boot")
    actors = declare(broker, config, lambda: ctx, chain=chain, min_backoff_ms=10, max_backoff_ms=20)
    worker = Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()

    def run(kind: str = "download") -> tuple[str, dict[str, str]]:
        job = ctx.jobs.submit(AVID, kind=kind)
        actors.start(AVID, job.job_id)
        for _ in range(len(CHAIN.stages) + 1):  # a stage may send the next one on another queue
            for q in (METADATA_QUEUE, DOWNLOAD_QUEUE):
                broker.join(q, fail_fast=False, timeout=30_000)
        worker.join()
        return job.job_id, ctx.jobs.get(job.job_id)

    yield script, run, ctx
    worker.stop()
    broker.close()
    ctx.redis.close()


def _warnings(ctx: Context, job_id: str) -> list[str]:
    return [e.data["message"] for e in ctx.events.after("0") if e.type == ev.WARNING and e.job_id == job_id]


def _final_stage(ctx: Context, job_id: str) -> str:
    """The stage named by the job's terminal event."""
    final = [e for e in ctx.events.after("0") if e.job_id == job_id
             and e.type in (ev.TASK_COMPLETED, ev.TASK_FAILED, "task_cancelled")]
    assert len(final) == 1, final
    return final[0].stage


def test_a_download_job_runs_the_declared_chain_and_completes(runner):
    script, run, ctx = runner
    job_id, job = run("download")
    assert job["status"] == "completed"
    assert script.calls == Counter(resolve=1, scrape=1, cover=1, download=1)
    assert Claims(ctx.redis).holder(AVID) is None


def test_a_metadata_job_stops_after_cover(runner):
    script, run, ctx = runner
    job_id, job = run("metadata")
    assert job["status"] == "completed" and _final_stage(ctx, job_id) == "cover"
    assert script.calls == Counter(resolve=1, scrape=1, cover=1)


def test_a_retriable_error_is_retried_by_dramatiq_and_the_job_goes_on(runner):
    script, run, ctx = runner
    script.plan["scrape"] = [UpstreamError("javbus", AVID, "timeout")]
    job_id, job = run("metadata")
    assert job["status"] == "completed"
    assert script.calls["scrape"] == 2 and script.calls["cover"] == 1
    assert _warnings(ctx, job_id) == [f"javbus: upstream error (timeout); retrying (1/{MAX_RETRIES})"]


def test_when_retries_run_out_the_job_fails_with_the_reason_and_frees_its_claim(runner):
    script, run, ctx = runner
    script.plan["resolve"] = [UpstreamError("missav", AVID, "HTTP 503")] * (MAX_RETRIES + 1)
    job_id, job = run()
    assert script.calls["resolve"] == MAX_RETRIES + 1 and script.calls["scrape"] == 0
    assert job["status"] == "failed" and _final_stage(ctx, job_id) == "resolve"
    assert "missav: upstream error (HTTP 503)" in job["message"]
    assert len(_warnings(ctx, job_id)) == MAX_RETRIES
    assert Claims(ctx.redis).holder(AVID) is None
    failed = [e for e in ctx.events.after("0") if e.type == ev.TASK_FAILED and e.job_id == job_id]
    assert len(failed) == 1 and failed[0].data["error"] == "UpstreamError"


def test_a_permanent_error_fails_the_job_without_a_retry(runner):
    script, run, ctx = runner
    script.plan["resolve"] = [SourceNotFound("missav", AVID)]
    job_id, job = run()
    assert script.calls == Counter(resolve=1)
    assert job["status"] == "failed" and "missav: not found" in job["message"]
    assert _warnings(ctx, job_id) == []


def test_an_unexpected_error_fails_the_job_as_internal_without_a_retry(runner):
    script, run, _ = runner
    script.plan["cover"] = [KeyError("cover_url")]
    _, job = run()
    assert script.calls == Counter(resolve=1, scrape=1, cover=1)
    assert job["status"] == "failed" and job["message"].startswith("internal error: ")


def test_a_users_cancel_ends_the_job_as_cancelled(runner):
    script, run, ctx = runner
    script.plan["download"] = [Cancelled("cancelled by the user")]
    job_id, job = run()
    assert script.calls["download"] == 1
    assert job["status"] == "cancelled" and _final_stage(ctx, job_id) == "download"


def test_a_worker_shutdown_sends_the_stage_again(runner):
    script, run, ctx = runner
    script.plan["download"] = [Cancelled("worker stopping")]
    script.on_call["download"] = lambda c: (c.shutdown.clear() if script.calls["download"] > 1
                                            else c.shutdown.set())
    _, job = run()
    assert script.calls["download"] == 2  # interrupted, sent again, finished
    assert job["status"] == "completed"


def test_a_cancel_flag_stops_the_job_before_the_next_stage_runs(runner):
    script, run, ctx = runner
    script.on_call["scrape"] = lambda c: c.jobs.update(Claims(c.redis).holder(AVID), cancel=1)
    job_id, job = run()
    assert script.calls == Counter(resolve=1, scrape=1)
    assert job["status"] == "cancelled" and _final_stage(ctx, job_id) == "cover"


def test_retry_outcome_hears_retries_decision():
    """Its after_process_message must run after Retries' (hooks run in reverse list order)."""
    broker = StubBroker()
    declare(broker, load(None, {}), None)
    kinds = [type(m).__name__ for m in broker.middleware]
    assert kinds.index("RetryOutcome") < kinds.index("Retries")
    assert sum(isinstance(m, RetryOutcome) for m in broker.middleware) == 1
    broker.close()


def test_the_chain_is_declared_once():
    assert CHAIN.names() == ["resolve", "scrape", "cover", "download"]
    assert [CHAIN.next(s, "download") for s in CHAIN.names()] == ["scrape", "cover", "download", None]
    assert [CHAIN.next(s, "metadata") for s in ("resolve", "scrape", "cover")] == ["scrape", "cover", None]
    assert {s.name: s.queue for s in CHAIN.stages} == {
        "resolve": METADATA_QUEUE, "scrape": METADATA_QUEUE, "cover": METADATA_QUEUE, "download": DOWNLOAD_QUEUE}
    assert all(isinstance(s, Stage) for s in CHAIN.stages)
