"""A Redis lease: at most one holder at a time, lost within ``ttl_ms`` of the holder dying.

The async sibling of ``pipeline/mutex.py`` (one slot, owner token, TTL renewed by its holder,
released only by its owner) for the gateway's event loop: several gateway processes elect the
one that keeps the library index with it (``gateway/index_keeper.py``).
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from pipeline.lua import RELEASE_IF_HELD, RENEW_IF_HELD

PREFIX = "nassav:lease:"


class Lease:
    """The lease ``name``; one instance per would-be holder (its ``token`` names it)."""

    def __init__(self, client: aioredis.Redis, name: str, *, ttl_ms: int, token: str | None = None):
        if ttl_ms < 100:
            raise ValueError("ttl_ms must be ≥ 100")
        self.client, self.ttl_ms = client, ttl_ms
        self.key = PREFIX + name
        self.token = token or uuid.uuid4().hex
        self._renew = client.register_script(RENEW_IF_HELD)
        self._release = client.register_script(RELEASE_IF_HELD)

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it, or keep it if we do (renewing it)."""
        if await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend our lease to a full TTL; False when it expired or someone else holds it."""
        return bool(await self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up (a no-op, False, when we do not hold it)."""
        return bool(await self._release(keys=[self.key], args=[self.token]))

    async def holder(self) -> str | None:
        """The token of the current holder (the client decodes replies, as every product client)."""
        return await self.client.get(self.key)
