"""The worker registry middleware on a real dramatiq Worker and a real Redis; the readers on data."""

import json
import time

import dramatiq
import pytest

from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE, make_broker
from pipeline.config import load
from pipeline.worker_registry import (WORKER_STALE_S, WORKERS_KEY, WorkerRegistry, live_workers,
                                      process_id, workers_per_queue)


def wait_for(what, check, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_is_registered_while_it_runs_and_removed_when_it_stops(r, redis_url):
    broker = make_broker(redis_url, load(None, {}).workers)
    broker.add_middleware(WorkerRegistry(r, queues=[METADATA_QUEUE], threads=3, beat_s=0.1))
    worker = dramatiq.Worker(broker, queues={METADATA_QUEUE}, worker_threads=1)
    worker.start()
    try:
        raw = wait_for(f"the worker's record (does dramatiq {dramatiq.__version__} still call "
                       "Middleware.after_worker_boot?)", lambda: r.hget(WORKERS_KEY, process_id()))
        record = json.loads(raw)
        assert record["queues"] == [METADATA_QUEUE] and record["threads"] == 3
        first = record["last_seen"]
        wait_for("a second beat", lambda: json.loads(r.hget(WORKERS_KEY, process_id()))["last_seen"] > first)
        # dramatiq's own heartbeat is kept fresh by the same beat, even with nothing to fetch
        assert any(r.zscore(k, broker.broker_id) is not None for k in r.scan_iter(match="*heartbeat*"))
    finally:
        worker.stop(timeout=5_000)
        broker.close()
    assert r.hget(WORKERS_KEY, process_id()) is None, \
        f"dramatiq {dramatiq.__version__} did not call Middleware.after_worker_shutdown"


def test_live_workers_marks_stale_and_skips_unreadable_records():
    now = 1_000.0
    records = [json.dumps({"host": "b", "pid": 2, "queues": [DOWNLOAD_QUEUE], "last_seen": now - 1}),
               json.dumps({"host": "a", "pid": 1, "queues": [METADATA_QUEUE], "last_seen": now - 2}),
               json.dumps({"host": "c", "pid": 3, "queues": [METADATA_QUEUE],
                           "last_seen": now - WORKER_STALE_S - 1}),
               b"not json"]
    live = live_workers(records, now)
    assert [w["host"] for w in live] == ["a", "b"] and all(w["alive"] for w in live)
    every = live_workers(records, now, include_stale=True)
    assert [(w["host"], w["alive"]) for w in every] == [("a", True), ("b", True), ("c", False)]
    assert every[2]["last_seen_ago_s"] == pytest.approx(WORKER_STALE_S + 1)
    assert workers_per_queue(every) == {METADATA_QUEUE: 1, DOWNLOAD_QUEUE: 1}


def test_workers_per_queue_lists_every_queue_and_any_other_named():
    assert workers_per_queue([]) == {METADATA_QUEUE: 0, DOWNLOAD_QUEUE: 0}
    both = {"alive": True, "queues": [METADATA_QUEUE, DOWNLOAD_QUEUE]}
    odd = {"alive": True, "queues": ["other"]}
    assert workers_per_queue([both, both, odd]) == {METADATA_QUEUE: 2, DOWNLOAD_QUEUE: 2, "other": 1}
