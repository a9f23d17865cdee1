"""pipeline/redis_wire.py, the seam into redis-py's asyncio connections (issue 13): the same bytes
as redis-py packs, the same replies, errors and reconnects as ``execute_command``, and a loud
failure when redis-py's shape changes. Real Redis."""

import asyncio

import pytest
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

from pipeline import redis_wire
from pipeline.jobs import AsyncJobs
from pipeline.redis_client import DECODED

ARGS = ["EVALSHA", "a" * 40, "2", "nassav:test:wire:k", "nassav:x", "héllo ✓", b"\x00\xffraw", "", "12.500000"]


def test_pack_writes_what_redis_py_would():
    conn = redis.asyncio.Connection()
    assert redis_wire.pack(ARGS) == b"".join(conn.pack_command(*ARGS))
    assert redis_wire.pack([]) == b"*0\r\n"


def _on_client(redis_url, fn, **options):
    async def go():
        client = redis.asyncio.Redis.from_url(redis_url, **DECODED, **options)
        try:
            return await fn(client)
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_replies_and_errors_are_execute_commands(r, redis_url):
    async def go(client):
        pack = redis_wire.pack
        assert await redis_wire.call_packed(client, pack(["SET", "nassav:test:wire:a", "é"])) == "OK"
        assert await redis_wire.call_packed(client, pack(["GET", "nassav:test:wire:a"])) == \
            await client.execute_command("GET", "nassav:test:wire:a") == "é"
        sha = await client.script_load("return {KEYS[1], ARGV[1]}")
        assert await redis_wire.call_packed(client, pack(["EVALSHA", sha, "1", "k", "v"])) == \
            await client.evalsha(sha, 1, "k", "v") == ["k", "v"]
        with pytest.raises(NoScriptError):
            await redis_wire.call_packed(client, pack(["EVALSHA", "0" * 40, "0"]))
        with pytest.raises(ResponseError, match="wrong number of arguments"):
            await redis_wire.call_packed(client, pack(["GET"]))
        # Every connection went back to the pool, none is left half-read.
        pool = client.connection_pool
        assert not pool._in_use_connections
        return await redis_wire.call_packed(client, pack(["PING"]))
    assert _on_client(redis_url, go) == "PONG"


def test_a_killed_connection_is_retried_as_redis_py_retries_it(r, redis_url):
    async def go(client):
        before = await redis_wire.call_packed(client, redis_wire.pack(["CLIENT", "ID"]))
        r.client_kill(next(c["addr"] for c in r.client_list() if int(c["id"]) == before))
        await asyncio.sleep(0.05)
        # The pooled connection is dead; redis-py's retry reconnects and sends again.
        after = await redis_wire.call_packed(client, redis_wire.pack(["CLIENT", "ID"]))
        return before, after
    before, after = _on_client(redis_url, go)
    assert after != before


def test_shape_check_names_what_changed(redis_url):
    async def go(client):
        redis_wire.check_shape(client, "EVALSHA")  # today's redis-py: fine
        with pytest.raises(redis_wire.RedisPyChanged, match="response callback for SET"):
            redis_wire.check_shape(client, "SET")  # SET's reply is post-processed by redis-py
        pool = client.connection_pool
        real = pool.connection_class
        pool.connection_class = type("Bare", (), {})
        try:
            with pytest.raises(redis_wire.RedisPyChanged, match=r"redis-py \S+: Connection.send_packed_command"):
                redis_wire.check_shape(client, "EVALSHA")
            with pytest.raises(redis_wire.RedisPyChanged):
                AsyncJobs(client)  # the gateway's job front refuses to start on it
        finally:
            pool.connection_class = real
    _on_client(redis_url, go)


def test_a_single_connection_client_keeps_redis_pys_path(r, redis_url):
    async def go(client):
        jobs = AsyncJobs(client)
        assert not jobs._packed
        first, again = await jobs.submit("WIRE-001"), await jobs.submit("WIRE-001")
        return first, again
    first, again = _on_client(redis_url, go, single_connection_client=True)
    assert first.accepted and not again.accepted and again.job_id == first.job_id
