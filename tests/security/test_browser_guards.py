"""Browsers cannot be turned against the service: every attack of ``tools/browser_attacks.py``
against the real gateway (uvicorn on loopback, real Redis), with no token and with one, judged
by what the gateway answered and by what it still holds; and the clients that must keep working
(same origin, no Origin, allowed names, ``cors_origins``) still do."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from pipeline import overrides
from pipeline import cookies
from pipeline.jobs import ACTIVE
from tests.api_helpers import put_resource
from tests.live_server import SSE, live_gateway
from tests.figures import record
from tools import browser_attacks as ba

TOKEN = "guards-test-token-0123456789"


@pytest.fixture(params=[None, TOKEN], ids=["no-token", "token"])
def served(request, tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, ba.VICTIM)
    with live_gateway(data, redis_url, api_token=request.param) as gw:
        gw.token = request.param
        gw.data = data
        yield gw


def call(gw, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None,
         host: str | None = None) -> tuple[int, dict, bytes]:
    h = {"Host": host if host is not None else f"127.0.0.1:{gw.port}", **(headers or {})}
    if getattr(gw, "token", None) and "Authorization" not in h:
        h["Authorization"] = f"Bearer {gw.token}"
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=h)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def ws_handshake(gw, path: str = "/ws/tasks/", headers: dict | None = None) -> ba.Answer:
    h = dict(headers or {})
    if getattr(gw, "token", None):
        h.setdefault("Sec-WebSocket-Protocol", f"bearer, {gw.token}")
    return ba.send(gw.base, ba.Attack("-", "-", "GET", path, h, websocket=True,
                                      host=h.pop("Host", None)))


def test_every_attack_is_refused_and_nothing_changes(served, r):
    answers = ba.run(served.base, token_cookie=served.token)
    assert len(answers) == len(ba.attacks(served.port)) == 23
    for a in answers:
        body = a.body
        if a.attack.kind == "rebinding":
            assert a.status == 400 and "allowed_hosts" in body, (a.attack.name, a.status, body)
        elif a.attack.method == "OPTIONS":
            assert a.status == 204 and body == "", (a.attack.name, a.status, body)
        elif a.attack.name == "text/plain POST without Origin (older browser)":
            assert a.status == 415 and "application/json" in body, body
        elif "no Origin, foreign Referer" in a.attack.name:
            assert a.status == 403 and "a cookie alone is not enough" in body, body
        else:
            assert a.status == 403 and "cors_origins" in body and "evil.example" in body, \
                (a.attack.name, a.status, body)
        assert a.read in (None, False), a.attack.name
    # The gateway's side: the folder is there, nothing is queued, no file was written.
    hurt = ba.damage(served.data, served.st.redis_url)
    assert hurt.none, hurt
    assert (served.data / ba.VICTIM / f"{ba.VICTIM}.json").exists()
    assert r.zcard(ACTIVE) == 0
    assert not overrides.path(served.data).exists() and not cookies.path(served.data).exists()
    assert len(served.st.relay.subs) == 0  # no WebSocket or SSE subscriber was ever left open
    mode = "token" if served.token else "no token"
    for kind, row in (("cross-site", "Cross-site requests"), ("rebinding", "DNS rebinding")):
        mine = [a for a in answers if a.attack.kind == kind]
        statuses = sorted({a.status for a in mine})
        record(f"{row} ({mode})", attempts=len(mine), answered=", ".join(map(str, statuses)),
               read=sum(1 for a in mine if a.read), data_lost="none" if hurt.none else "YES")


def test_same_origin_and_no_origin_clients_keep_working(served, r):
    own = f"http://127.0.0.1:{served.port}"
    json_type = {"Content-Type": "application/json"}
    # The web page: same-origin fetches with JSON, an empty-bodied submit, a DELETE.
    s, _, b = call(served, "POST", "/api/downloads/batch_submit", body=b'{"avids": ["OK-001"]}',
                   headers={"Origin": own, **json_type})
    assert s == 202, b
    s, _, b = call(served, "POST", "/api/downloads/OK-002", headers={"Origin": own})
    assert s == 202, b
    s, _, b = call(served, "PUT", "/api/setting", body=b'{"download": {"concurrency": 4}}',
                   headers={"Origin": own, "Content-Type": "application/json; charset=utf-8"})
    assert s == 200 and overrides.path(served.data).exists(), b
    # curl and the CLI: no Origin at all.
    s, _, b = call(served, "POST", "/api/resources/batch", headers=json_type,
                   body=json.dumps({"actions": [{"action": "delete", "avid": ba.VICTIM}]}).encode())
    assert s == 202 and b"deleted" in b and not (served.data / ba.VICTIM).exists(), b
    assert r.zcard(ACTIVE) == 2
    # The live stream, same origin and no Origin; the name localhost as well as the address.
    for headers in ({"Origin": own}, {}, {"Origin": f"http://localhost:{served.port}",
                                          "Host": f"localhost:{served.port}"}):
        ws = ws_handshake(served, headers=dict(headers))
        assert ws.status == 101 and "queue_status" in ws.body, (headers, ws.status, ws.body)
        sse_headers = {**headers, **({"Authorization": f"Bearer {served.token}"} if served.token else {})}
        sse = SSE(served.base, "/nassav/api/events", headers=sse_headers)
        try:
            assert sse.status == 200 and sse.next()["data"]["type"] == "queue_status"
        finally:
            sse.close()


def test_host_allow_list(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url, allowed_hosts=["nas.example.com", "*.home.example"]) as gw:
        def host(h: str) -> int:
            return call(gw, "GET", "/api/resources/", host=h)[0]

        for ok in ("127.0.0.1", f"127.0.0.1:{gw.port}", "127.9.9.9:1", f"[::1]:{gw.port}", "localhost",
                   "LOCALHOST:80", "localhost.", "app.localhost:8000", "nas.example.com:8443",
                   "nas.example.com", "media.home.example", "a.b.home.example:1"):
            assert host(ok) == 200, ok
        for bad in ("rebind.evil.example", f"rebind.evil.example:{gw.port}", "home.example",
                    "nas.example.com.evil.example", "evilhome.example", "10.0.0.5",
                    "192.168.1.10:8000", "user@localhost", "localhost:notaport", "2130706433", ""):
            status, _, body = call(gw, "GET", "/api/resources/", host=bad)
            assert status == 400 and b"allowed_hosts" in body, (bad, status, body)
        # No Host at all (HTTP/1.0): refused as well.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(b"GET /api/resources/ HTTP/1.0\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 400")
        # The WebSocket: an allowed name opens, a rebound one gets the same 400.
        good = ws_handshake(gw, headers={"Host": "media.home.example", "Origin": "http://media.home.example"})
        assert good.status == 101 and "queue_status" in good.body
        bad = ws_handshake(gw, headers={"Host": "rebind.evil.example"})
        assert bad.status == 400 and "allowed_hosts" in bad.body


def test_cors_origins_keep_working(tmp_path, r, redis_url):
    nas = "http://nas.local:8080"
    with live_gateway(tmp_path / "data", redis_url, cors_origins=[nas]) as gw:
        s, h, _ = call(gw, "OPTIONS", "/api/downloads/batch_submit",
                       headers={"Origin": nas, "Access-Control-Request-Method": "POST",
                                "Access-Control-Request-Headers": "content-type"})
        assert s == 200 and h["access-control-allow-origin"] == nas
        s, h, b = call(gw, "POST", "/api/downloads/batch_submit", body=b'{"avids": ["NAS-001"]}',
                       headers={"Origin": nas, "Content-Type": "application/json"})
        assert s == 202 and h["access-control-allow-origin"] == nas, b
        assert ws_handshake(gw, headers={"Origin": nas}).status == 101
        # An origin not listed: its preflight gets no grant, its requests a 403.
        s, h, _ = call(gw, "OPTIONS", "/api/downloads/batch_submit",
                       headers={"Origin": ba.EVIL, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in h
        s, h, b = call(gw, "POST", "/api/downloads/EVIL-001", headers={"Origin": ba.EVIL})
        assert s == 403 and b"cors_origins" in b and r.zcard(ACTIVE) == 1


def test_options_never_reaches_a_route(served, r):
    from tests.test_auth import http_routes

    paths = {p for _, p in http_routes(served.app)} | {"/dashboard/queues/download",
                                                      "/dashboard/queues/download/standard/x"}
    for path in sorted(paths):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Origin": f"http://127.0.0.1:{served.port}"}):
            s, h, b = call(served, "OPTIONS", path, headers=headers)
            assert s == 204 and b == b"" and "POST" in h["allow"], (path, headers, s, b[:200])


def test_content_type_rules(served, r):
    for ok in ("application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"):
        s, _, b = call(served, "POST", "/api/downloads/batch_submit", body=b'{"avids": []}',
                       headers={"Content-Type": ok})
        assert s == 400 and b"avids" in b, (ok, s, b)  # got to the route, which wants AVIDs
    for bad in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                "application/jsonx", "text/json", None):
        headers = {"Content-Type": bad} if bad else {}
        for method, path in (("POST", "/api/downloads/batch_submit"), ("PUT", "/api/setting"),
                             ("PATCH", f"/api/resource/{ba.VICTIM}/status"),
                             ("DELETE", f"/api/resource/{ba.VICTIM}")):
            s, _, b = call(served, method, path, body=b'{"avids": ["CT-001"]}', headers=headers)
            assert s == 415 and b"Content-Type: application/json" in b, (bad, method, s, b)
    assert r.zcard(ACTIVE) == 0 and (served.data / ba.VICTIM).exists()


def test_a_refused_websocket_leaves_no_error_in_the_log(tmp_path, r, redis_url):
    """Contract with uvicorn: ``auth.deny`` answers a refused handshake with an HTTP response
    (the ASGI denial extension) and waits for the connection loss, without which uvicorn's
    websockets-sansio protocol logs an error for every refusal (seen with uvicorn 0.54)."""
    import logging

    import uvicorn

    errors: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    handler = Collect(logging.ERROR)
    # uvicorn's loggers do not reach the root, and its start-up resets their handlers.
    logger = logging.getLogger("uvicorn.error")
    with live_gateway(tmp_path / "data", redis_url, api_token=TOKEN) as gw:
        logger.addHandler(handler)
        try:
            for headers in ({"Host": "rebind.evil.example"}, {"Origin": ba.EVIL}, {}):
                ans = ba.send(gw.base, ba.Attack("-", "-", "GET", "/ws/tasks/", headers, websocket=True,
                                                 host=headers.pop("Host", None)))
                assert ans.status in (400, 401, 403) and ans.body.startswith("{"), ans
            time.sleep(0.5)  # the error, if any, is logged once the app has returned
        finally:
            logger.removeHandler(handler)
    assert not errors, (f"uvicorn {uvicorn.__version__} logged errors for refused WebSocket handshakes; "
                        f"has its denial-response handling changed? {errors}")
