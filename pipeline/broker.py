"""Dramatiq on Redis, set up from config: queues, redelivery timing, no import-time globals.

With dramatiq's defaults a SIGKILLed worker's message came back after ~300 s (60 s
heartbeat timeout, maintenance on 1 in 1000 calls). A 15 s heartbeat timeout and maintenance
on 1 in 20 calls bring it back in well under 30 s for an idle-polling peer.

This is also the one module that knows how dramatiq's Redis broker lays its keys out (for
``<ns>:<queue>``: the list of ready ids, ``.msgs`` the bodies of every unacked message,
``.DQ`` the delay queue, ``.XQ`` the dead letters, ``__heartbeats__`` the consumers'
liveness). Everything else asks :func:`queue_lengths`, :func:`pending_job_ids` and
:func:`beat`; ``tests/test_broker_contract.py`` fails, naming the dramatiq version, when
the layout changes.
"""

from __future__ import annotations

import json

import redis
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker

from pipeline.config import WorkerConfig
from pipeline.redis_client import is_sentinel, sentinel_client

METADATA_QUEUE = "metadata"
DOWNLOAD_QUEUE = "download"
QUEUES = (METADATA_QUEUE, DOWNLOAD_QUEUE)
# Notifications and media-server rescans (actors/notify.py): their own queue, so a slow
# target never delays a stage. Not in QUEUES (job stages); workers serve it by default.
NOTIFY_QUEUE = "notify"
NAMESPACE = "nassav-dramatiq"

_MAINTENANCE_SCALE = 1_000_000  # dramatiq counts maintenance chance per million calls
_HEARTBEATS_KEY = f"{NAMESPACE}:__heartbeats__"
LENGTH_STATES = ("ready", "messages", "delayed", "dead")


def make_broker(redis_url: str, workers: WorkerConfig, *, socket_timeout_s: float = 30.0) -> RedisBroker:
    """A RedisBroker with both queues declared (the dashboard lists declared queues only)."""
    # Our own pool, to give sockets a timeout: a Redis that hangs (rather than dies) must
    # not block worker threads forever. Dramatiq polls; it issues no blocking commands.
    timeouts = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": min(5.0, socket_timeout_s),
                "health_check_interval": 30}
    if is_sentinel(redis_url):
        # A client on the Sentinels' current master: after a failover its next connection
        # goes to the new one, and dramatiq's consumers reconnect on ConnectionError.
        connection = {"client": sentinel_client(redis_url, decoded=False, **timeouts)}
    else:
        connection = {"connection_pool": redis.ConnectionPool.from_url(redis_url, **timeouts)}
    broker = RedisBroker(
        **connection,
        namespace=NAMESPACE,
        heartbeat_timeout=workers.heartbeat_timeout_ms,
        maintenance_chance=max(1, _MAINTENANCE_SCALE // max(1, workers.maintenance_one_in)),
    )
    for q in QUEUES:
        broker.declare_queue(q)
    return broker


def _length_keys(queue: str) -> tuple[str, str, str, str]:
    """The keys whose lengths are ``LENGTH_STATES`` of ``queue``, in that order."""
    base = f"{NAMESPACE}:{queue}"
    return base, f"{base}.msgs", f"{base}.DQ.msgs", f"{base}.XQ.msgs"


async def queue_lengths(client: aioredis.Redis) -> dict[str, dict[str, int]]:
    """Messages per queue: ``ready`` (waiting), ``messages`` (all unacked, in flight too),
    ``delayed`` and ``dead``, in one round trip."""
    async with client.pipeline(transaction=False) as p:
        for q in QUEUES:
            ready, msgs, delayed, dead = _length_keys(q)
            p.llen(ready)
            p.hlen(msgs)
            p.hlen(delayed)
            p.hlen(dead)
        raw = await p.execute()
    n = len(LENGTH_STATES)
    return {q: dict(zip(LENGTH_STATES, raw[i * n:i * n + n])) for i, q in enumerate(QUEUES)}


def ready_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue`` that no worker has taken yet."""
    return int(client.llen(_length_keys(queue)[0]))


def pending_job_ids(client: redis.Redis) -> set[str]:
    """Job ids (an actor's second argument) of every message the broker still holds.

    The broker keeps a message's body in ``<ns>:<queue>.msgs`` until it is acked, whether it
    waits in the queue, runs on a worker or sits in the delay queue. Dead letters are not
    pending work.
    """
    found: set[str] = set()
    for q in QUEUES:
        for name in (q, f"{q}.DQ"):
            for _, raw in client.hscan_iter(f"{NAMESPACE}:{name}.msgs", count=500):
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                args = msg.get("args") or []
                if len(args) >= 2:
                    found.add(str(args[1]))
    return found


def beat(client: redis.Redis, broker: RedisBroker, now_s: float) -> None:
    """Mark ``broker``'s consumers alive, as they do themselves each time they fetch.

    A worker whose threads are all busy on long downloads fetches nothing for minutes; without
    this its unacked messages would be handed to another worker after ``heartbeat_timeout``.
    """
    client.zadd(_HEARTBEATS_KEY, {broker.broker_id: int(now_s * 1000)})
