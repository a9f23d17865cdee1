"""Load and slow clients on the real gateway (uvicorn on loopback as ``nassav serve`` runs it,
real Redis).

- 500 submits from one client, each on its own connection and all in flight together, never
  meet a 503: the gateway's Redis connections come from a blocking pool that waits for a free
  connection instead of failing when all are busy (``gateway/redis_pool.py``).
- Sockets that trickle a request's headers a byte at a time are answered 408 and closed
  within ``gateway.header_timeout_s``; ``gateway.max_connections`` caps open connections.
- The header timeout is the one seam into uvicorn's private insides
  (``gateway/header_timeout.py``): its contract tests run it on a tiny app under both of
  uvicorn's HTTP implementations and name the uvicorn version when its shape changes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest
import uvicorn
import websockets.sync.client

from gateway import header_timeout
from gateway.redis_pool import PoolExhausted, WaitingPool
from tests.conftest import free_port, wait_for
from tests.figures import record
from tests.live_server import live_gateway
from tests.security.raw_http import burst, request_bytes, send, trickle

N = 500


def _codes(answers) -> Counter:
    return Counter(a.status for a in answers)


def test_500_concurrent_submits_of_distinct_avids_are_all_accepted(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url) as gw:
        reqs = [request_bytes("POST", f"/api/downloads/LOAD-{i + 1:04d}", gw.port) for i in range(N)]
        answers, wall_s = asyncio.run(burst(gw.port, reqs))
    codes = _codes(answers)
    record("500 concurrent submits (distinct AVIDs)", wall_s=round(wall_s, 2),
           **{f"n_{k}": v for k, v in sorted(codes.items())})
    assert codes == {202: N}, (codes, [a.body[:200] for a in answers if a.status != 202][:3])
    # Every claim was taken once, by the request that answered 202.
    assert len({a.json()["data"]["job_id"] for a in answers}) == N
    assert r.llen("nassav-dramatiq:metadata") == N


def test_500_concurrent_submits_of_one_avid_give_one_202_and_409s(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url) as gw:
        reqs = [request_bytes("POST", "/api/downloads/SAME-001", gw.port)] * N
        answers, wall_s = asyncio.run(burst(gw.port, reqs))
    codes = _codes(answers)
    record("500 concurrent submits (one AVID)", wall_s=round(wall_s, 2),
           **{f"n_{k}": v for k, v in sorted(codes.items())})
    assert codes == {202: 1, 409: N - 1}, (codes, [a.body[:200] for a in answers
                                                   if a.status not in (202, 409)][:3])
    accepted = next(a.json()["data"]["job_id"] for a in answers if a.status == 202)
    assert {a.json()["data"]["job_id"] for a in answers} == {accepted}
    assert r.llen("nassav-dramatiq:metadata") == 1


def test_a_small_pool_makes_requests_wait_not_fail(tmp_path, r, redis_url):
    # Four connections, two of them held by the relay and the projection: 200 submits at
    # once all wait their turn for the other two.
    with live_gateway(tmp_path / "data", redis_url, gateway={"redis_pool_size": 4}) as gw:
        pool = gw.st.redis.connection_pool
        assert isinstance(pool, WaitingPool) and pool.max_connections == 4
        reqs = [request_bytes("POST", f"/api/downloads/POOL-{i + 1:03d}", gw.port) for i in range(200)]
        answers, _ = asyncio.run(burst(gw.port, reqs))
    assert Counter(a.status for a in answers) == {202: 200}


def test_pool_timeout_is_a_typed_error_naming_the_settings(redis_url, r):
    # The contract with redis-py's BlockingConnectionPool: a wait that times out raises
    # ConnectionError "from" asyncio.TimeoutError, which WaitingPool turns into PoolExhausted.
    async def main():
        pool = WaitingPool.from_url(redis_url, max_connections=1, timeout=0.2)
        held = await pool.get_connection()
        try:
            with pytest.raises(PoolExhausted) as e:
                await pool.get_connection()
        finally:
            await pool.release(held)
            await pool.disconnect()
        return str(e.value)

    message = asyncio.run(main())
    assert "gateway.redis_pool_size" in message and "gateway.redis_pool_timeout_s" in message


def test_an_unreachable_redis_is_not_reported_as_an_exhausted_pool(tmp_path):
    async def main():
        pool = WaitingPool.from_url(f"unix://{tmp_path}/no.sock", max_connections=2, timeout=1)
        try:
            with pytest.raises(Exception) as e:
                await pool.get_connection()
        finally:
            await pool.disconnect()
        return e.value

    err = asyncio.run(main())
    assert not isinstance(err, PoolExhausted) and "no.sock" in str(err)


def test_a_redis_that_is_really_down_is_still_a_503(tmp_path):
    from pipeline.embedded_redis import EmbeddedRedis

    own = EmbeddedRedis(tmp_path / "redis")
    own.start()
    try:
        with live_gateway(tmp_path / "data", own.url) as gw:
            assert asyncio.run(send(gw.port, request_bytes("POST", "/api/downloads/UP-001", gw.port))).status == 202
            own.stop()
            a = asyncio.run(send(gw.port, request_bytes("POST", "/api/downloads/DOWN-001", gw.port), timeout_s=30))
    finally:
        own.stop()
    assert a.status == 503, a.body
    message = a.json()["message"]
    assert "Redis is unreachable" in message and "no free Redis connection" not in message, message


# -- slow clients ----------------------------------------------------------------------------

HEADER_TIMEOUT_S = 2.0
SLACK_S = 3.0  # the machine is shared: generous on purpose


def test_slow_header_senders_are_closed_within_the_timeout_while_health_answers(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url, gateway={"header_timeout_s": HEADER_TIMEOUT_S}) as gw:
        head = request_bytes("GET", "/health", gw.port)

        async def main():
            # 50 sockets sending one byte every 1.5 s: each would need ~90 s to finish its head.
            slow = [asyncio.create_task(trickle(gw.port, head, every_s=1.5, max_bytes=8)) for _ in range(50)]
            checks = []
            while not all(t.done() for t in slow):
                t0 = time.monotonic()
                a = await send(gw.port, head, timeout_s=10)
                checks.append((a.status, time.monotonic() - t0))
                await asyncio.sleep(0.2)
            return [t.result() for t in slow], checks

        slow, checks = asyncio.run(main())
    still_open = sum(1 for closed_s, _ in slow if closed_s is None)
    closed = [c for c, _ in slow if c is not None]
    record("slow clients", sockets=50, header_timeout_s=HEADER_TIMEOUT_S, still_open=still_open,
           closed_after_s_max=round(max(closed), 2) if closed else None,
           health_checks=len(checks), health_max_s=round(max(t for _, t in checks), 3))
    assert still_open == 0
    assert max(closed) <= HEADER_TIMEOUT_S + SLACK_S
    for _, raw in slow:
        assert raw.startswith(b"HTTP/1.1 408 ") and b"gateway.header_timeout_s" in raw, raw[:200]
    assert len(checks) >= 5 and all(status == 200 for status, _ in checks), checks
    assert max(t for _, t in checks) < 2.0, checks


def test_connection_cap_refuses_requests_until_idle_sockets_time_out(tmp_path, r, redis_url):
    cap = 16
    with live_gateway(tmp_path / "data", redis_url,
                      gateway={"header_timeout_s": HEADER_TIMEOUT_S, "max_connections": cap}) as gw:
        health = request_bytes("GET", "/health", gw.port)

        async def main():
            idle = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(cap)]
            try:
                await asyncio.sleep(0.3)  # let the server accept them all
                over = await send(gw.port, health)
                t0 = time.monotonic()
                eofs = await asyncio.gather(*(asyncio.wait_for(rd.read(), HEADER_TIMEOUT_S + SLACK_S)
                                              for rd, _ in idle), return_exceptions=True)
                closed_s = time.monotonic() - t0
                after = await send(gw.port, health)
            finally:
                for _, w in idle:
                    w.close()
            return over, eofs, closed_s, after

        over, eofs, closed_s, after = asyncio.run(main())
    assert over.status == 503
    assert all(isinstance(e, bytes) and e.startswith(b"HTTP/1.1 408 ") for e in eofs), eofs
    assert closed_s <= HEADER_TIMEOUT_S + SLACK_S
    assert after.status == 200


# -- the header-timeout seam: its contract with uvicorn -----------------------------------------

@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_uvicorn_still_has_the_shape_the_header_timeout_relies_on(http):
    header_timeout.check_shape(http)  # raises UvicornChanged naming the version
    from uvicorn.server import ServerState

    cfg = uvicorn.Config(_tiny_app, http=http)
    cfg.load()
    proto = header_timeout.base_class(http)(config=cfg, server_state=ServerState(), app_state={},
                                            _loop=asyncio.new_event_loop())
    try:
        missing = [a for a in header_timeout.INSTANCE_ATTRS if not hasattr(proto, a)]
        assert not missing, (f"uvicorn {uvicorn.__version__}: {type(proto).__name__} instances lack "
                             f"{missing}; update gateway/header_timeout.py")
    finally:
        proto.loop.close()


def test_a_changed_uvicorn_stops_the_start_naming_its_version():
    class Reshaped:  # a protocol class of some future uvicorn, without the hooks
        def connection_made(self, transport):
            pass

    with pytest.raises(header_timeout.UvicornChanged) as e:
        header_timeout.check_shape("httptools", Reshaped)
    assert f"uvicorn {uvicorn.__version__}" in str(e.value) and "on_headers_complete" in str(e.value)


async def _tiny_app(scope, receive, send):
    """Answers "ok" (after ``?sleep=`` seconds), echoes on a WebSocket."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": m.get("text") or ""})
    q = scope["query_string"].decode()
    if q.startswith("sleep="):
        await asyncio.sleep(float(q[6:]))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _TinyServer:
    def __init__(self, http: str, timeout_s: float, keep_alive_s: float):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(
            _tiny_app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on",
            http=header_timeout.protocol_class(http, timeout_s), ws="websockets-sansio",
            timeout_keep_alive=keep_alive_s))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "_TinyServer":
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 10, 0.02, "the tiny server")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_header_timeout_closes_only_connections_waiting_for_headers(http):
    timeout_s, keep_alive_s = 1.0, 1.0
    with _TinyServer(http, timeout_s, keep_alive_s) as srv:
        port = srv.port

        async def main():
            out = {}
            # A trickled head: 408 within the timeout.
            out["trickled"] = await trickle(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", every_s=0.4,
                                            max_bytes=20)
            # A handler slower than the timeout is answered in full.
            out["slow_handler"] = await send(port, b"GET /?sleep=2.5 HTTP/1.1\r\nHost: x\r\n"
                                                   b"Connection: close\r\n\r\n", timeout_s=10)
            # Kept alive: a second request after a pause is answered; then a trickled third
            # is closed within keep-alive + timeout.
            rd, wr = await asyncio.open_connection("127.0.0.1", port)
            try:
                wr.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                first = await asyncio.wait_for(rd.readuntil(b"ok"), 5)
                await asyncio.sleep(0.5)
                wr.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                second = await asyncio.wait_for(rd.readuntil(b"ok"), 5)
                t0 = time.monotonic()
                rest = b""
                for b in b"GET / HTTP/1.1\r\n":
                    wr.write(bytes([b]))
                    try:
                        rest = await asyncio.wait_for(rd.read(), 0.3)
                        break
                    except asyncio.TimeoutError:
                        continue
                out["kept_alive"] = (first, second, rest, time.monotonic() - t0)
            finally:
                wr.close()
            return out

        out = asyncio.run(main())
        closed_s, raw = out["trickled"]
        assert closed_s is not None and closed_s <= timeout_s + SLACK_S and raw.startswith(b"HTTP/1.1 408 ")
        assert out["slow_handler"].status == 200 and out["slow_handler"].body == b"ok"
        first, second, rest, after_s = out["kept_alive"]
        assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
        assert rest.startswith(b"HTTP/1.1 408 ") and after_s <= keep_alive_s + timeout_s + SLACK_S

        # A WebSocket outlives the header timeout.
        with websockets.sync.client.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            time.sleep(timeout_s + keep_alive_s + 0.5)
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"


@pytest.mark.parametrize("key, bad, expected", [
    ("header_timeout_s", 0, "seconds from 1 to 300"), ("max_connections", 5, "from 16 to 100000"),
    ("redis_pool_size", 2, "from 4 to 10000"), ("redis_pool_timeout_s", 0, "seconds from 0.1 to 120")])
def test_gateway_settings_are_bounded(tmp_path, key, bad, expected):
    from pipeline.config import load
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load(None, {}, data_dir=str(tmp_path), gateway={key: bad})
    assert f"gateway.{key}" in str(e.value) and expected in str(e.value)


def test_serve_and_the_live_gateway_run_uvicorn_with_the_same_settings(tmp_path, r, redis_url):
    from gateway.auth import MAX_BODY_BYTES

    settings = {"header_timeout_s": 7.0, "max_connections": 321}
    with live_gateway(tmp_path / "data", redis_url, gateway=settings) as gw:
        used = gw.server.config
    assert used.limit_concurrency == 321 and used.ws_max_size == MAX_BODY_BYTES
    assert used.http.header_timeout_s == 7.0 and used.http.__name__.startswith("HeaderTimeout")
    assert used.host == "127.0.0.1" and used.port == gw.port


def test_an_exhausted_pool_answers_busy_not_unreachable(tmp_path, r, redis_url):
    # The handler the app installs for Redis errors tells a full pool from a Redis that is down.
    from starlette.requests import Request
    from redis.exceptions import RedisError

    from gateway.app import create_app
    from pipeline.config import load

    app = create_app(load(None, {}, data_dir=str(tmp_path / "data"), redis_url=redis_url), redis_url)
    handler = app.exception_handlers[RedisError]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    busy = asyncio.run(handler(request, PoolExhausted("no free Redis connection after 10 s")))
    down = asyncio.run(handler(request, RedisError("Connection refused")))
    assert busy.status_code == down.status_code == 503
    assert b"the gateway is busy" in busy.body and b"unreachable" not in busy.body
    assert b"Redis is unreachable" in down.body
