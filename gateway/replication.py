"""Sentinel mode: a job is on a replica before the gateway answers 202 (Redis ``WAIT``).

Redis replicates asynchronously, so when the master dies the promoted replica lacks whatever
had not reached it yet: a job the gateway had just accepted (its claim, record and queue
message) could vanish with a 202 already sent. ``WAIT n t`` blocks until ``n`` replicas
acknowledge every write made *on that connection*, so :meth:`Replication.confirm` writes a
probe and WAITs on one connection: the probe comes after the job's writes on the same master,
so its replication covers them. When fewer replicas answer within the timeout (one is down or
lagging) the gateway still answers 202 and logs it: refusing would make one replica's outage
an outage of the whole service, and the sweep re-queues a job whose message went missing.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

log = logging.getLogger("nassav.gateway")

PROBE_KEY = "nassav:replication:probe"


class Replication:
    """``replicas`` to wait for (0: never wait), at most ``timeout_ms`` per accepted job."""

    def __init__(self, client: aioredis.Redis, replicas: int, timeout_ms: int):
        self.client, self.replicas, self.timeout_ms = client, replicas, timeout_ms

    async def confirm(self, avid: str, job_id: str) -> int | None:
        """How many replicas hold everything written before now (None when not waiting)."""
        if self.replicas <= 0:
            return None
        async with self.client.pipeline(transaction=False) as p:
            p.set(PROBE_KEY, job_id, px=60_000)
            p.wait(self.replicas, self.timeout_ms)
            _, acked = await p.execute()
        if acked < self.replicas:
            log.warning("job %s (%s) accepted on the master but only %d of %d replica(s) confirmed it "
                        "within %d ms: a failover now could lose it until the sweep re-queues it",
                        job_id, avid, acked, self.replicas, self.timeout_ms)
        return acked
