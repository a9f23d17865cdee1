"""One Redis command sent as bytes packed here, on a redis-py asyncio client: the one place nassav
uses redis-py's connection insides to make a command cheaper (issue 13, the submit script).

``Redis.execute_command`` packs every argument through the connection's encoder (a type check
and an encode per argument: 17 of them for a submit), then runs observability hooks around
the call; for a duplicate submit that was ~20 % of the gateway's CPU. :func:`pack` writes the
RESP array directly from ``str``/``bytes``, and :func:`call_packed` sends it the way
``execute_command`` does: a connection from the client's pool, redis-py's retry policy with
its disconnect on failure, ``read_response`` (which raises the server's error as redis-py's
typed exception, e.g. ``NoScriptError``), and the connection released.

What it relies on (checked by :func:`check_shape`, and by ``tests/test_redis_wire.py``): the
pool's ``get_connection()``/``release(conn)``; a connection's ``send_packed_command(bytes)``,
``read_response()``, ``disconnect(error=, failure_count=)`` and ``retry.call_with_retry(do,
fail, with_failure_count=True)``; the client's ``single_connection_client`` and
``response_callbacks`` (a command sent here must have none: its reply is returned as read).
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable

import redis
from redis.asyncio.retry import Retry

__all__ = ["RedisPyChanged", "call_packed", "check_shape", "pack"]


class RedisPyChanged(RuntimeError):
    """redis-py's asyncio client no longer has the shape :func:`call_packed` relies on."""


def pack(args: Iterable[str | bytes]) -> bytes:
    """The RESP array of bulk strings a Redis command is sent as (``str`` as UTF-8)."""
    parts = [b""]
    for a in args:
        b = a.encode() if type(a) is str else a
        parts.append(b"$%d\r\n%b\r\n" % (len(b), b))
    parts[0] = b"*%d\r\n" % (len(parts) - 1)
    return b"".join(parts)


def _params(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def check_shape(client: Any, command: str) -> None:
    """Raise :class:`RedisPyChanged`, naming the redis-py version, when ``client`` (a
    ``redis.asyncio.Redis``) cannot carry ``command`` through :func:`call_packed`."""
    pool = getattr(client, "connection_pool", None)
    conn_cls = getattr(pool, "connection_class", None)
    missing = [name for name, ok in (
        ("ConnectionPool.get_connection", callable(getattr(pool, "get_connection", None))),
        ("ConnectionPool.release", callable(getattr(pool, "release", None))),
        ("Connection.send_packed_command", callable(getattr(conn_cls, "send_packed_command", None))),
        ("Connection.read_response", callable(getattr(conn_cls, "read_response", None))),
        ("Connection.disconnect(error, failure_count)",
         {"error", "failure_count"} <= _params(getattr(conn_cls, "disconnect", None))),
        ("Retry.call_with_retry(with_failure_count)",
         "with_failure_count" in _params(getattr(Retry, "call_with_retry", None))),
        ("Redis.single_connection_client", hasattr(client, "single_connection_client")),
        ("Redis.response_callbacks", isinstance(getattr(client, "response_callbacks", None), dict)),
    ) if not ok]
    if not missing and command.upper() in client.response_callbacks:
        missing = [f"no response callback for {command}"]
    if missing:
        raise RedisPyChanged(f"redis-py {redis.__version__}: {', '.join(missing)} no longer holds; "
                             f"pipeline/redis_wire.py was written for redis-py 8.1 and must be updated")


async def call_packed(client: Any, packed: bytes) -> Any:
    """Send ``packed`` (from :func:`pack`) on one of ``client``'s pooled connections and return
    the reply as read; errors and retries as ``client.execute_command`` has them."""
    pool = client.connection_pool
    conn = await pool.get_connection()

    async def attempt() -> Any:
        await conn.send_packed_command(packed)
        return await conn.read_response()

    async def failed(error: Exception, failure_count: int) -> None:
        await conn.disconnect(error=error, failure_count=failure_count)

    try:
        return await conn.retry.call_with_retry(attempt, failed, with_failure_count=True)
    finally:
        await pool.release(conn)
