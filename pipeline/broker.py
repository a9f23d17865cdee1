"""Dramatiq on Redis, set up from config: queues, redelivery timing, no import-time globals.

With dramatiq's defaults a SIGKILLed worker's message came back after ~300 s (60 s
heartbeat timeout, maintenance on 1 in 1000 calls). A 15 s heartbeat timeout and maintenance
on 1 in 20 calls bring it back in well under 30 s for an idle-polling peer.
"""

from __future__ import annotations

import redis
from dramatiq.brokers.redis import RedisBroker

from pipeline.config import WorkerConfig

METADATA_QUEUE = "metadata"
DOWNLOAD_QUEUE = "download"
QUEUES = (METADATA_QUEUE, DOWNLOAD_QUEUE)
NAMESPACE = "nassav-dramatiq"

_MAINTENANCE_SCALE = 1_000_000  # dramatiq counts maintenance chance per million calls


def make_broker(redis_url: str, workers: WorkerConfig, *, socket_timeout_s: float = 30.0) -> RedisBroker:
    """A RedisBroker with both queues declared (the dashboard lists declared queues only)."""
    # Our own pool, to give sockets a timeout: a Redis that hangs (rather than dies) must
    # not block worker threads forever. Dramatiq polls; it issues no blocking commands.
    pool = redis.ConnectionPool.from_url(redis_url, socket_timeout=socket_timeout_s,
                                         socket_connect_timeout=min(5.0, socket_timeout_s),
                                         health_check_interval=30)
    broker = RedisBroker(
        connection_pool=pool,
        namespace=NAMESPACE,
        heartbeat_timeout=workers.heartbeat_timeout_ms,
        maintenance_chance=max(1, _MAINTENANCE_SCALE // max(1, workers.maintenance_one_in)),
    )
    for q in QUEUES:
        broker.declare_queue(q)
    return broker
