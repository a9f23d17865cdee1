"""Every Redis client the product opens decodes replies (``pipeline/redis_client.py``).

Checked two ways: the clients the worker and the gateway really open answer ``str`` on a real
Redis, and no product module opens a client any other way (Dramatiq's own pool in
``pipeline/broker.py`` aside) or converts ``bytes`` replies itself.
"""

from __future__ import annotations

import asyncio
import re

from actors.context import Context
from gateway.redis_pool import open_client
from pipeline.config import load
from pipeline.jobs import Jobs
from pipeline.redis_client import connect
from tests.test_architecture import modules

# Where a client may be built: the one sync door, the gateway's pool (passes DECODED), and
# Dramatiq's broker, whose own pool reads its message bodies its way.
OPENERS = {"pipeline.redis_client", "gateway.redis_pool", "pipeline.broker"}
OPENING = re.compile(r"\b(Redis|ConnectionPool|BlockingConnectionPool|WaitingPool)\.from_url\(|\bRedis\(")
CONVERTING = re.compile(r"\.decode\(\) if isinstance\(|isinstance\([\w.\[\]\"']+, bytes\)")


def test_the_workers_client_answers_str(r, redis_url, tmp_path):
    ctx = Context.create(load(None, {}, data_dir=str(tmp_path)), redis_url)
    try:
        res = Jobs(ctx.redis).submit("STR-001", kind="metadata")
        assert isinstance(res.job_id, str) and isinstance(res.event_id, str)
        assert ctx.redis.get("nassav:claim:STR-001") == res.job_id
        assert Jobs(ctx.redis).get(res.job_id)["avid"] == "STR-001"
    finally:
        ctx.redis.close()


def test_the_gateways_client_answers_str(r, redis_url):
    r.hset("nassav:test-hash", mapping={"a": "1"})

    async def read():
        client = open_client(redis_url, load(None, {}).gateway)
        try:
            return await client.hgetall("nassav:test-hash"), await client.xadd("nassav:test-s", {"k": "v"})
        finally:
            await client.aclose()
    h, entry_id = asyncio.run(read())
    assert h == {"a": "1"} and isinstance(entry_id, str)
    with connect(redis_url) as c:
        assert c.xrange("nassav:test-s") == [(entry_id, {"k": "v"})]


def test_no_product_module_opens_a_client_another_way_or_converts_bytes():
    opened, converting = [], []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if name not in OPENERS and OPENING.search(text):
            opened.append(name)
        converting += [f"{name}: {m.group(0)}" for m in CONVERTING.finditer(text)]
    assert not opened, f"open Redis clients through pipeline.redis_client.connect: {opened}"
    assert not converting, f"product clients answer str; no bytes conversions: {converting}"


def test_the_check_sees_a_bytes_conversion():
    assert CONVERTING.search("job_id = v.decode() if isinstance(v, bytes) else v")
    assert OPENING.search("client = redis.Redis.from_url(url)")


def test_the_gateways_and_workers_replies_are_parsed_in_c(redis_url):
    """hiredis (a dependency) is what redis-py parses replies with: in pure Python, parsing the
    index projection's XREADGROUP replies was ~70 % of its CPU (docs/benchmarks/pipeline.md).
    redis-py picks it by itself; this fails when it is missing or redis-py stops picking it."""
    import redis.utils

    assert redis.utils.HIREDIS_AVAILABLE, "hiredis is not installed (pyproject.toml lists it)"

    async def parser_name():
        client = open_client(redis_url, load(None, {}).gateway)
        try:
            return type(client.connection_pool.make_connection()._parser).__name__
        finally:
            await client.aclose()
    assert "Hiredis" in asyncio.run(parser_name())
    with connect(redis_url) as c:
        assert "Hiredis" in type(c.connection_pool.make_connection()._parser).__name__
