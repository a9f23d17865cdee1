"""The duplicate-submit fast path (issue 13): the submit script's flat reply, EVALSHA sent
straight with its NOSCRIPT fallback, and host_check's remembered verdicts. Real Redis."""

import asyncio

import redis.asyncio

from gateway.guards import HOST_VERDICTS_MAX, host_check
from gateway.hosts import HostPolicy
from pipeline import blocklist as bl, jobs as jobstates
from pipeline.jobs import AsyncJobs, Jobs
from pipeline.redis_client import DECODED
from tests.test_claims import _on_loop


def test_each_outcome_of_the_flat_reply_on_both_fronts(r, redis_url):
    first = Jobs(r).submit("FLT-001")
    assert first.accepted and first.event_id  # '1' + the stream id
    dupe = _on_loop(redis_url, lambda jobs: jobs.submit("FLT-001"))
    assert (dupe.accepted, dupe.job_id, dupe.event_id) == (False, first.job_id, "")
    assert Jobs(r).submit("FLT-001") == dupe
    bl.Blocklist(r).add_avid("FLT-002", reason="not wanted")
    for submit in (lambda: Jobs(r).submit("FLT-002"),
                   lambda: _on_loop(redis_url, lambda jobs: jobs.submit("FLT-002"))):
        try:
            submit()
        except bl.AvidBlocked as e:
            assert (e.avid, e.reason) == ("FLT-002", "not wanted")
        else:
            raise AssertionError("a blocked AVID was accepted")


def test_async_submit_reloads_a_flushed_script_cache(r, redis_url):
    async def flushed_then_twice(jobs):
        await jobs.client.script_flush()
        a = await jobs.submit("NOS-001")
        b = await jobs.submit("NOS-001")
        return a, b

    a, b = _on_loop(redis_url, flushed_then_twice)
    assert a.accepted and not b.accepted and b.job_id == a.job_id
    assert Jobs(r).get(a.job_id)["status"] == jobstates.QUEUED


def _scope(host):
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    return {"type": "http", "headers": headers}


def test_host_check_answers_the_same_from_memory_and_stays_bounded():
    check = host_check(HostPolicy(["nas.example"], bind_host="127.0.0.1"))
    for _ in range(2):  # the second pass comes from the remembered verdicts
        assert check(_scope("127.0.0.1:8000")) is None
        assert check(_scope("nas.example")) is None
        code, message = check(_scope("evil.example"))
        assert code == 400 and "'evil.example'" in message and "allowed_hosts" in message
        assert check(_scope(None))[0] == 400
    # A flood of made-up names fills the memory up to its bound, then is judged afresh.
    for i in range(HOST_VERDICTS_MAX + 50):
        assert check(_scope(f"x{i}.evil.example"))[0] == 400
    assert check(_scope("localhost:1")) is None
    assert check(_scope("y.evil.example"))[0] == 400
    verdicts = check.__closure__
    sizes = [len(c.cell_contents) for c in verdicts if isinstance(c.cell_contents, dict)]
    assert sizes == [HOST_VERDICTS_MAX]


def test_the_pool_skips_the_wait_only_when_nobody_waits_and_a_connection_is_free(redis_url):
    from gateway.redis_pool import WaitingPool

    async def go():
        pool = WaitingPool.from_url(redis_url, max_connections=1, timeout=5, **DECODED)
        client = redis.asyncio.Redis.from_pool(pool)
        try:
            assert pool._may_skip_wait()  # idle: a connection may be opened at once
            held = await pool.get_connection()
            assert not pool._may_skip_wait()  # the only connection is out
            waiter = asyncio.ensure_future(client.set("FP-1", "x"))  # waits its turn
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await pool.release(held)
            # Released with a waiter queued: the waiter gets it.
            assert await waiter is True
            assert pool._may_skip_wait()
            assert await asyncio.gather(*(client.get("FP-1") for _ in range(20))) == ["x"] * 20
        finally:
            await client.aclose()
    asyncio.run(go())


def test_a_write_that_outlasts_socket_timeout_is_a_redis_timeout_and_drops_the_connection(tmp_path):
    """The gateway's write timeout (a timeout scope, gateway/redis_pool.py) still fires: a private
    Redis is stopped (SIGSTOP) so a 64 MB write fills the socket buffers and waits."""
    import os
    import signal

    import pytest
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from gateway.redis_pool import ScopedWriteTimeout, open_client
    from pipeline.config import GatewayConfig
    from pipeline.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path)
    url = server.start()

    async def go():
        client = open_client(url, GatewayConfig())
        conn = None
        try:
            assert await client.ping()
            conn = client.connection_pool._available_connections[0]
            assert isinstance(conn, ScopedWriteTimeout) and conn.socket_timeout == 5
            conn.socket_timeout = 0.5
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
                    await client.set("BIG", b"x" * (64 << 20))
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            assert conn.socket_timeout == 0.5 and not conn.is_connected
            assert await client.ping()  # a fresh connection afterwards
        finally:
            await client.aclose()
    try:
        asyncio.run(go())
    finally:
        server.stop()


def test_has_video_without_path_objects_answers_as_before(tmp_path):
    """has_video's str paths (pipeline/store.py) are download_target()'s, and a folderless
    title is answered without reading its metadata; titles with folders as before."""
    import json

    from pipeline.avid import parse
    from pipeline.store import ResourceStore

    store = ResourceStore(tmp_path / "data")
    none, plain, cd, imported = (parse(c) for c in ("NOF-001", "MP4-001", "CDS-001", "IMP-001"))
    assert not store.has_video(none)
    target = store.download_target(plain)
    target.parent.mkdir(parents=True)
    assert not store.has_video(plain)  # a folder, no video
    target.write_bytes(b"x")
    assert store.has_video(plain)
    store.file(cd, "-cd1.mkv").parent.mkdir(parents=True)
    store.file(cd, "-cd1.mkv").write_bytes(b"x")
    assert store.has_video(cd)
    outside = tmp_path / "elsewhere" / "movie.mp4"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    store.dir(imported).mkdir()
    store.meta(imported).write_text(json.dumps({"video": {"file": str(outside)},
                                                "import": {"mode": "in-place", "files": [str(outside)]}}))
    assert store.has_video(imported)


def test_the_served_gateway_freezes_what_start_up_built(tmp_path, r, redis_url):
    """create_app(freeze_gc=True), as gateway/serve.py builds it: after the lifespan's start-up
    the objects alive are out of the cyclic collector's full passes; without it, nothing is."""
    import gc

    from starlette.testclient import TestClient

    from gateway.app import create_app
    from tests.api_helpers import config

    cfg = config(tmp_path / "data", redis_url)
    gc.unfreeze()
    try:
        with TestClient(create_app(cfg, redis_url)) as c:
            assert gc.get_freeze_count() == 0
            assert c.post("/api/downloads/GCF-001").status_code == 202
        with TestClient(create_app(cfg, redis_url, freeze_gc=True)) as c:
            assert gc.get_freeze_count() > 10_000  # the modules, the app, the pools …
            assert c.post("/api/downloads/GCF-001").status_code == 409
            assert c.post("/api/downloads/GCF-002").status_code == 202
    finally:
        gc.unfreeze()
