"""Contract of ``pipeline/broker.py`` with dramatiq's Redis key layout, on a real Redis.

These tests fail, naming the dramatiq version, when dramatiq stores its messages or its
consumers' heartbeats elsewhere than ``pipeline/broker.py`` reads and writes them.
"""

import asyncio
import re
import time
from pathlib import Path

import dramatiq
import redis.asyncio as aioredis
from dramatiq import Message

from pipeline.broker import (DOWNLOAD_QUEUE, METADATA_QUEUE, NAMESPACE, beat, make_broker,
                             pending_job_ids, queue_lengths)
from pipeline.config import load

CHANGED = f"dramatiq {dramatiq.__version__} changed its Redis key layout; update pipeline/broker.py"


def message(queue: str, avid: str, job_id: str) -> Message:
    return Message(queue_name=queue, actor_name="resolve", args=(avid, job_id), kwargs={}, options={})


def lengths(redis_url: str) -> dict:
    async def read():
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await queue_lengths(client)
        finally:
            await client.aclose()
    return asyncio.run(read())


def fetch_one(broker, queue: str):
    consumer = broker.consume(queue, prefetch=1, timeout=100)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = next(consumer)
        if got is not None:
            return consumer, got
    raise AssertionError(f"no message came out of {queue}")


def test_lengths_and_pending_ids_follow_where_dramatiq_keeps_messages(r, redis_url):
    broker = make_broker(redis_url, load(None, {}).workers)
    try:
        broker.enqueue(message(METADATA_QUEUE, "ABC-001", "ready-job"))
        broker.enqueue(message(METADATA_QUEUE, "ABC-002", "delayed-job"), delay=600_000)
        broker.enqueue(message(DOWNLOAD_QUEUE, "ABC-003", "dead-job"))
        broker.enqueue(message(DOWNLOAD_QUEUE, "ABC-004", "running-job"))
        consumer, dead = fetch_one(broker, DOWNLOAD_QUEUE)
        consumer.nack(dead)  # a dead letter
        consumer, running = fetch_one(broker, DOWNLOAD_QUEUE)  # in flight, not acked
        assert {dead.args[1], running.args[1]} == {"dead-job", "running-job"}

        got = lengths(redis_url)
        assert got[METADATA_QUEUE] == {"ready": 1, "messages": 1, "delayed": 1, "dead": 0}, CHANGED
        assert got[DOWNLOAD_QUEUE] == {"ready": 0, "messages": 1, "delayed": 0, "dead": 1}, CHANGED
        assert pending_job_ids(r) == {"ready-job", "delayed-job", running.args[1]}, CHANGED
        consumer.ack(running)
        assert pending_job_ids(r) == {"ready-job", "delayed-job"}, CHANGED
        assert lengths(redis_url)[DOWNLOAD_QUEUE]["messages"] == 0, CHANGED
    finally:
        broker.close()


def test_beat_writes_the_heartbeat_dramatiq_consumers_write(r, redis_url):
    broker = make_broker(redis_url, load(None, {}).workers)
    try:
        broker.enqueue(message(METADATA_QUEUE, "ABC-001", "j1"))
        fetch_one(broker, METADATA_QUEUE)  # a consumer beats when it fetches
        heartbeats = list(r.scan_iter(match=f"{NAMESPACE}:*heartbeat*"))
        assert len(heartbeats) == 1, f"{CHANGED}: heartbeat keys now {heartbeats}"
        theirs = r.zscore(heartbeats[0], broker.broker_id)
        assert theirs is not None, CHANGED
        beat(r, broker, 4_000_000_000.0)
        assert r.zscore(heartbeats[0], broker.broker_id) == 4_000_000_000_000, CHANGED
        assert r.zcard(heartbeats[0]) == 1, f"{CHANGED}: beat wrote a key dramatiq does not read"
    finally:
        broker.close()


def test_empty_queues_have_zero_lengths(r, redis_url):
    zero = {"ready": 0, "messages": 0, "delayed": 0, "dead": 0}
    assert lengths(redis_url) == {METADATA_QUEUE: zero, DOWNLOAD_QUEUE: zero}
    assert pending_job_ids(r) == set()


def test_only_pipeline_broker_knows_the_key_layout():
    """The issue's rule, kept: grep finds dramatiq's key names in pipeline/broker.py only."""
    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"\.msgs\b|\.DQ\b|\.XQ\b|__heartbeats__")
    found = sorted(str(p.relative_to(root))
                   for folder in ("pipeline", "actors", "sources", "gateway", "tools")
                   for p in (root / folder).rglob("*.py") if pattern.search(p.read_text(encoding="utf-8")))
    assert found == ["pipeline/broker.py"]
