"""Tokens: beyond loopback only a long one will do; wrong ones are rate-limited per client
address (HTTP and WebSocket), on the real gateway."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import pytest

from gateway.auth import MIN_TOKEN_CHARS, bind_problem
from gateway.ratelimit import FailureWindow
from pipeline.config import load
from tests.conftest import ROOT, wait_for
from tests.live_server import live_gateway
from tools import browser_attacks as ba

TOKEN = "limits-token-0123456789"


@pytest.mark.parametrize("token", [" ", "a", "x" * (MIN_TOKEN_CHARS - 1), " " * 20, "sixteen chars no"])
def test_a_weak_token_cannot_bind_beyond_loopback(tmp_path, token):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NASSAV_")}, "NASSAV_API_TOKEN": token}
    data = tmp_path / "data"
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--host", "0.0.0.0", "--data-dir", str(data),
                        "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    # Says what is wrong and how to make a good one.
    assert "weak API token" in lines[0] and "at least 16" in lines[0] and "token_urlsafe" in lines[0], lines[0]
    assert not (data / ".redis").exists()  # nothing was started


def test_bind_problem_rules():
    def problem(host: str, token: str | None) -> str | None:
        env = {"NASSAV_HOST": host, **({"NASSAV_API_TOKEN": token} if token else {})}
        return bind_problem(load(None, env))

    assert problem("127.0.0.1", None) is None and problem("::1", "a") is None  # loopback: no rule
    assert problem("localhost", "a") is None
    assert problem("0.0.0.0", "x" * 16) is None and problem("192.168.1.5", TOKEN) is None
    for weak in ("a", "x" * 15, "tab\there-0123456789", "  padded-0123456789  "):
        assert "at least 16" in problem("0.0.0.0", weak), weak


def test_failure_window_counts_per_client_and_forgets():
    now = [1000.0]
    w = FailureWindow(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert w.retry_after_s("a") == 0
        w.fail("a")
    assert w.retry_after_s("a") == 60 and w.retry_after_s("b") == 0
    now[0] += 59.5
    assert w.retry_after_s("a") == 1
    now[0] += 1
    assert w.retry_after_s("a") == 0  # the first failures left the window
    small = FailureWindow(1, 10, clock=lambda: now[0], max_clients=100)
    for i in range(500):  # a flood of addresses cannot grow the table without bound
        small.fail(f"10.0.{i // 250}.{i % 250}")
    assert len(small) <= 100


def get(port: int, path: str, token: str, *, source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def test_wrong_tokens_get_429_after_a_burst(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url, api_token=TOKEN, auth_fail_window_s=3) as gw:
        for i in range(10):  # the default limit: 10 wrong in the window
            assert get(gw.port, "/api/resources/", f"guess-{i}")[0] == 403
        status, headers, body = get(gw.port, "/api/resources/", "guess-10")
        assert status == 429, body
        assert 1 <= int(headers["retry-after"]) <= 3
        assert b"limit 10 in 3 s" in body and b"auth_fail_limit" in body and b"retry in" in body
        # While paused even the right token is not compared (a guess must learn nothing).
        assert get(gw.port, "/api/resources/", TOKEN)[0] == 429
        # The WebSocket handshake too, whichever way the token comes.
        ws = ba.send(gw.base, ba.Attack("-", "-", "GET", "/ws/tasks/", {"Sec-WebSocket-Protocol": "bearer, nope"},
                                        websocket=True))
        assert ws.status == 429 and "retry in" in ws.body
        ws = ba.send(gw.base, ba.Attack("-", "-", "GET", f"/ws/tasks/?token={TOKEN}", {}, websocket=True))
        assert ws.status == 429
        # Per client address: another loopback address is not affected.
        assert get(gw.port, "/api/resources/", TOKEN, source="127.0.0.2")[0] == 200
        assert get(gw.port, "/api/resources/", "guess", source="127.0.0.2")[0] == 403
        # No token at all is not a guess: still the plain 401 that asks for one.
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        conn.request("GET", "/api/resources/")
        assert conn.getresponse().status == 401
        conn.close()
        # Once the window has passed, the right token works again.
        wait_for(lambda: get(gw.port, "/api/resources/", TOKEN)[0] == 200, 10, 0.25, "the pause to end")
        ws = ba.send(gw.base, ba.Attack("-", "-", "GET", "/ws/tasks/", {"Sec-WebSocket-Protocol": f"bearer, {TOKEN}"},
                                        websocket=True))
        assert ws.status == 101 and "queue_status" in ws.body
