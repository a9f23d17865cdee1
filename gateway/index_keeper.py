"""Which of several gateway processes keeps the library index (``gateway.processes`` > 1).

Exactly one process at a time projects the event stream into the SQLite index (the
``nassav-index`` consumer group would otherwise split the events between processes, and
several writers would rebuild at once): the holder of the Redis lease ``index-keeper``. It
renews the lease every third of its TTL; the others read the index (WAL lets them read while
the keeper writes) and try to take the lease at the same pace, so when the keeper dies one of
them takes over within the TTL and its projection goes on from the group's position (entries
the dead keeper read but never acknowledged are claimed after ``claim_idle_ms``).

A keeper that cannot renew (the lease expired while Redis was away, and another took it)
stops projecting; two projections for a moment are harmless (absorbing is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from gateway.index import IndexNotReady, LibraryIndex
from gateway.lease import Lease
from gateway.projection import Projection
from gateway.tasks import cancel_and_wait
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.index")

LEASE_NAME = "index-keeper"
KEEPER, READER = "keeper", "reader"


class IndexKeeper:
    """Elects this process keeper or reader of the index and switches when the lease moves."""

    def __init__(self, client: aioredis.Redis, data_dir, store: ResourceStore, *, ttl_s: float,
                 lease_name: str = LEASE_NAME):
        self.client, self.data_dir, self.store = client, data_dir, store
        self.lease = Lease(client, lease_name, ttl_ms=int(ttl_s * 1000),
                           token=f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}")
        self.ttl_s = ttl_s
        self.index: LibraryIndex | None = None
        self.projection: Projection | None = None
        self._task: asyncio.Task | None = None

    @property
    def role(self) -> str:
        return KEEPER if self.projection is not None else READER

    async def start(self) -> None:
        """Return once the index can be read: as its keeper, or as a reader of the keeper's file."""
        while self.index is None:
            try:
                if await self.lease.try_acquire():
                    self.index = await run_in_threadpool(LibraryIndex, self.data_dir, store=self.store)
                    await self._promote()
                    break
            except RedisError as e:
                log.warning("index keeper: redis unavailable (%s); opening the index as a reader", e)
            try:
                self.index = await run_in_threadpool(LibraryIndex, self.data_dir, store=self.store, keeper=False)
                log.info("index: reading the index another gateway process keeps (pid %d)", os.getpid())
            except IndexNotReady:
                await asyncio.sleep(0.2)  # the keeper is making the file
        self._task = asyncio.create_task(self._run(), name="index-keeper")

    async def _promote(self) -> None:
        self.projection = Projection(self.client, self.index)
        await self.projection.start()
        log.info("index: this gateway process (pid %d) keeps the library index", os.getpid())

    async def _demote(self) -> None:
        projection, self.projection = self.projection, None
        if projection:
            await projection.stop()
        log.warning("index: lost the keeper's lease; pid %d only reads the index now", os.getpid())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                if self.projection is not None:
                    if not await self.lease.renew():
                        await self._demote()
                elif await self.lease.try_acquire():
                    await self._promote()
            except RedisError as e:
                # The lease outlives a short outage; a long one lets another process take it,
                # which the next renew() finds out.
                log.warning("index keeper: redis unavailable (%s)", e)

    async def stop(self) -> None:
        """Stop projecting and hand the lease on at once (a reader need not wait out the TTL)."""
        await cancel_and_wait(self._task)
        if self.projection is not None:
            await self.projection.stop()
            self.projection = None
            try:
                await self.lease.release()
            except RedisError as e:
                log.warning("index keeper: lease not released (%s); it expires in %.0f s", e, self.ttl_s)
        if self.index is not None:
            self.index.close()
            self.index = None
