"""The gateway's Redis client: a bounded pool that makes a request wait for a free connection.

redis-py's default asyncio pool holds at most 100 connections and raises "Too many
connections" at once when all are busy, so 500 submits in flight answered 402 of them 503
although Redis was fine. The blocking pool queues them instead; only a request that waited
``redis_pool_timeout_s`` in vain fails, with :class:`PoolExhausted` naming both settings.

With a ``redis+sentinel://`` URL the same blocking pool opens its connections on the master
the Sentinels name (asked on each new connection), so after a failover it reconnects by itself.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from pipeline.config import GatewayConfig
from pipeline.redis_client import (DECODED, is_sentinel, master_options, parse_sentinel,
                                   sentinel_options)


class ScopedWriteTimeout:
    """Mixed in before a redis-py asyncio connection class: the write's ``socket_timeout`` as an
    ``asyncio.timeout`` scope instead of ``asyncio.wait_for``.

    On Python 3.11 ``wait_for`` runs every write in a new task, so each command paid for a task,
    a loop turn and a resume of the whole awaiting stack (a request's ~30 frames of middleware
    and routing); a ``GET`` on this client went from 67 to 44 µs of CPU (``tools/profile_ingest.py``
    harness). Same timeout, same outcome: the connection is dropped and redis-py's
    ``TimeoutError`` raised. A (re)connect's handshake or health-check ping inside the write runs
    under the same scope; reads keep redis-py's own timeout, which is already a scope."""

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        timeout = getattr(self, "socket_timeout", None)  # absent: redis-py's own path
        if not timeout or sys.version_info >= (3, 12):  # 3.12's wait_for makes no task
            return await super().send_packed_command(command, check_health)
        self.socket_timeout = None  # the write below then goes without wait_for
        try:
            async with asyncio.timeout(timeout):
                return await super().send_packed_command(command, check_health)
        except asyncio.TimeoutError:
            await self.disconnect(nowait=True)  # redis-py's own path did so already; harmless
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


def scoped_write_timeout(connection_class: type) -> type:
    """``connection_class`` with :class:`ScopedWriteTimeout` mixed in."""
    if issubclass(connection_class, ScopedWriteTimeout):
        return connection_class
    return type(f"Scoped{connection_class.__name__}", (ScopedWriteTimeout, connection_class), {})


class PoolExhausted(RedisConnectionError):
    """No Redis connection became free in time (Redis itself may be healthy)."""


class WaitingPool(aioredis.BlockingConnectionPool):
    """``BlockingConnectionPool`` whose wait timeout raises :class:`PoolExhausted`.

    When nobody waits and a connection is free (or may be opened), it is handed out at once,
    as redis-py's non-blocking pool does: the blocking path (condition, timeout timer, context
    managers, wait-time metrics) cost ~25 µs a command: a ``SET NX`` on this pool took 80–90 µs
    of CPU, 56 µs without it (``tools/profile_ingest.py``'s harness; a duplicate submit costs
    ~250 µs). Only the wait needs that machinery.
    The skipped wait-time and connection-count metrics are redis-py's OpenTelemetry ones,
    which nassav does not export."""

    async def get_connection(self, *args, **kwargs):
        if not args and not kwargs and self._may_skip_wait():
            connection = self.get_available_connection()
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as e:
            # redis-py raises a bare ConnectionError "from" the wait's TimeoutError; a
            # connection that could not be made (Redis down) carries no such cause.
            if isinstance(e.__cause__, asyncio.TimeoutError) and type(e) is RedisConnectionError:
                raise PoolExhausted(
                    f"no free Redis connection after {self.timeout:g} s (all {self.max_connections} "
                    "in use; see gateway.redis_pool_size and gateway.redis_pool_timeout_s)") from None
            raise

    async def release(self, connection) -> None:
        # The blocking pool's release takes the condition to notify a waiter; with nobody
        # waiting the notify does nothing, so the connection goes straight back (the pool's
        # own lock and bookkeeping still run): ~10 µs of a duplicate submit (issue 13).
        if self._nobody_waits():
            await super(aioredis.BlockingConnectionPool, self).release(connection)
        else:
            await super().release(connection)

    def _nobody_waits(self) -> bool:
        # getattr: a redis-py without these insides takes the blocking path, as before.
        condition = getattr(self, "_condition", None)
        waiters = getattr(condition, "_waiters", None)
        return waiters is not None and not waiters and not condition.locked()

    def _may_skip_wait(self) -> bool:
        # No await between this check and get_available_connection(): on one event loop no
        # other task can take the connection in between. Waiters keep their turn (FIFO).
        if not self._nobody_waits() or getattr(self, "_in_maintenance", True):
            return False
        return bool(self.can_get_connection())


class WaitingSentinelPool(WaitingPool, SentinelConnectionPool):
    """:class:`WaitingPool` whose connections go to the Sentinels' current master: each new
    connection asks them, so after a failover the pool reconnects to the new master."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs):
        # Sentinel.master_for passes these two by position; BlockingConnectionPool's first
        # positional is max_connections, so hand them on by name to SentinelConnectionPool.
        super().__init__(service_name=service_name, sentinel_manager=sentinel_manager, **kwargs)


class SentinelMasterClient(aioredis.Redis):
    """The master's client; closing it closes the clients of the Sentinels it asks too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        manager = self.connection_pool.sentinel_manager
        await super().aclose(close_connection_pool)
        for s in manager.sentinels:
            await s.aclose()


def open_client(redis_url: str, settings: GatewayConfig) -> aioredis.Redis:
    """An asyncio Redis client on its own :class:`WaitingPool` (closed with the client); its
    replies are ``str``, as every product client's (``pipeline/redis_client.py``)."""
    options = dict(max_connections=settings.redis_pool_size, timeout=settings.redis_pool_timeout_s,
                   socket_timeout=5, socket_connect_timeout=2, health_check_interval=30, **DECODED)
    if is_sentinel(redis_url):
        u = parse_sentinel(redis_url)
        manager = Sentinel(list(u.sentinels), sentinel_kwargs=sentinel_options(u))
        return manager.master_for(u.service, redis_class=SentinelMasterClient,
                                  connection_pool_class=WaitingSentinelPool,
                                  connection_class=scoped_write_timeout(SentinelManagedConnection),
                                  **master_options(u), **options)
    pool = WaitingPool.from_url(redis_url, **options)
    pool.connection_class = scoped_write_timeout(pool.connection_class)  # before any connection
    return aioredis.Redis.from_pool(pool)
