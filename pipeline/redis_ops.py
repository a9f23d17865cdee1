"""Running a Redis operation written once as a generator, on a sync or an asyncio client.

An operation yields each call it needs as ``(method, args)`` or ``(method, args, kwargs)``, or a
list of such calls to send in one pipelined round trip (the reply is then the list of
replies), and is sent the reply; what it returns is the result. The same operation so serves
the workers (``redis.Redis``) and the gateway (``redis.asyncio.Redis``):
:mod:`pipeline.subscriptions` and :mod:`pipeline.blocklist` are written this way.
"""

from __future__ import annotations

from typing import Any, Generator

import redis
import redis.asyncio as aioredis

Op = Generator[Any, Any, Any]


def _parts(call: tuple) -> tuple[str, tuple, dict[str, Any]]:
    method, args, *kw = call
    return method, args, (kw[0] if kw else {})


def run_sync(client: redis.Redis, op: Op) -> Any:
    """Drive ``op`` on a sync client; its return value."""
    reply = None
    try:
        while True:
            call = op.send(reply)
            if isinstance(call, list):
                pipe = client.pipeline(transaction=False)
                for m, a, k in map(_parts, call):
                    getattr(pipe, m)(*a, **k)
                reply = pipe.execute()
            else:
                m, a, k = _parts(call)
                reply = getattr(client, m)(*a, **k)
    except StopIteration as done:
        return done.value


async def run_async(client: aioredis.Redis, op: Op) -> Any:
    """Drive ``op`` on an asyncio client; its return value."""
    reply = None
    try:
        while True:
            call = op.send(reply)
            if isinstance(call, list):
                async with client.pipeline(transaction=False) as pipe:
                    for m, a, k in map(_parts, call):
                        getattr(pipe, m)(*a, **k)
                    reply = await pipe.execute()
            else:
                m, a, k = _parts(call)
                reply = await getattr(client, m)(*a, **k)
    except StopIteration as done:
        return done.value
