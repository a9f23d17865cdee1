"""Sentinel mode: a job is on a replica before the gateway answers 202 (Redis ``WAIT``).

Redis replicates asynchronously, so when the master dies the promoted replica lacks whatever
had not reached it yet: a job the gateway had just accepted (its claim, record and queue
message) could vanish with a 202 already sent. ``WAIT n t`` blocks until ``n`` replicas
acknowledge every write made *on that connection*, so :meth:`Replication.confirm` writes a
probe and WAITs on one connection: the probe comes after the job's writes on the same master,
so its replication covers them.

When fewer replicas confirm within the timeout, the question is why. If the server we wrote
to is no longer the master the Sentinels name (a failover is under way: the old master accepts
writes until it is demoted, then drops them), the job is as good as lost: the gateway answers
503 (:class:`FailoverUnderWay`) and the client's retry creates it on the new master (or gets
409 with its id if it survived after all). If it still is the master, a replica is merely
down or lagging: the gateway answers 202 and logs it, since refusing would turn one replica's
outage into the service's; the sweep re-queues a job whose message goes missing.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError

log = logging.getLogger("nassav.gateway")

PROBE_KEY = "nassav:replication:probe"


class FailoverUnderWay(RedisConnectionError):
    """The job went to a master the Sentinels no longer name: a failover is under way."""


class Replication:
    """``replicas`` to wait for (0: never wait), at most ``timeout_ms`` per accepted job.

    ``sentinels`` is the asyncio ``Sentinel`` manager and the service name, to tell a failover
    from a slow replica when the wait falls short (the gateway's pool carries both)."""

    def __init__(self, client: aioredis.Redis, replicas: int, timeout_ms: int, *,
                 sentinels: tuple[object, str] | None = None):
        self.client, self.replicas, self.timeout_ms = client, replicas, timeout_ms
        self.sentinels = sentinels

    @classmethod
    def for_pool(cls, client: aioredis.Redis, replicas: int, timeout_ms: int) -> "Replication":
        """Waits when ``client``'s pool is a Sentinel one (else never)."""
        pool = client.connection_pool
        manager, service = getattr(pool, "sentinel_manager", None), getattr(pool, "service_name", None)
        if manager is None or service is None:
            return cls(client, 0, timeout_ms)
        return cls(client, replicas, timeout_ms, sentinels=(manager, service))

    async def confirm(self, avid: str, job_id: str) -> int | None:
        """How many replicas hold everything written before now (None when not waiting);
        raises :class:`FailoverUnderWay` when the master written to is being replaced."""
        if self.replicas <= 0:
            return None
        async with self.client.pipeline(transaction=False) as p:
            p.set(PROBE_KEY, job_id, px=60_000)
            p.wait(self.replicas, self.timeout_ms)
            p.info("server")
            _, acked, server = await p.execute()
        if acked >= self.replicas:
            return acked
        if self.sentinels is not None and not await self._still_master(server.get("run_id")):
            raise FailoverUnderWay(
                f"a Sentinel failover is under way: {avid} was written to a master that is being "
                f"replaced and no replica confirmed it within {self.timeout_ms} ms")
        log.warning("job %s (%s) accepted on the master but only %d of %d replica(s) confirmed it "
                    "within %d ms: a failover now could lose it", job_id, avid, acked, self.replicas,
                    self.timeout_ms)
        return acked

    async def _still_master(self, run_id: str | None) -> bool:
        """Whether the first Sentinel that answers names the server of ``run_id`` master."""
        manager, service = self.sentinels
        for sentinel in manager.sentinels:
            try:
                state = await sentinel.sentinel_master(service)
            except (RedisError, OSError):
                continue
            return bool(run_id) and state.get("runid") == run_id
        return False  # no Sentinel answers: nothing says this master is still the one
