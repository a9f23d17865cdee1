"""The product's Redis clients: every reply comes back as ``str``, never ``bytes``.

Each client the product opens decodes responses (``decode_responses=True``): the sync ones
through :func:`connect` (workers, sweep, CLI) and the gateway's asyncio pool
(``gateway/redis_pool.py``), so no caller converts bytes itself. The keys hold text only
(ids, JSON, numbers; images and cookies live on disk). Dramatiq's broker keeps its own,
non-decoding pool (``pipeline/broker.py``): what it reads is its business.
"""

from __future__ import annotations

from typing import Any

import redis

# What every product client is opened with (the gateway's pool passes it too).
DECODED: dict[str, Any] = {"decode_responses": True}


def connect(redis_url: str, **options: Any) -> redis.Redis:
    """A sync client on ``redis_url`` whose replies are ``str``; ``options`` go to redis-py
    (timeouts, health checks)."""
    return redis.Redis.from_url(redis_url, **DECODED, **options)
