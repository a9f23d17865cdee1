"""The API token on every route family, the WebSocket subprotocol, the dashboard cookie, and the
refusal to bind beyond loopback without a token."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from starlette.websockets import WebSocketDisconnect

from gateway import web
from gateway.auth import PUBLIC_PATHS, bind_problem, is_loopback
from gateway.openapi import walk
from pipeline.config import load
from tests.api_helpers import gateway, put_resource
from tests.conftest import ROOT

TOKEN = "s3cret-token_abc"
SAMPLE = {"avid": "ABC-001", "id": "1"}


def http_routes(app):
    """(method, concrete path) for every HTTP route of the app, path parameters filled in."""
    out = []
    for path, method, _, _ in walk(app.routes):
        if method in ("WEBSOCKET",):
            continue
        concrete = re.sub(r"\{([^}:]+)(?::[^}]+)?\}", lambda m: SAMPLE.get(m.group(1), "x"), path)
        out.append(("GET" if method == "MOUNT" else method, concrete + ("/" if method == "MOUNT" else "")))
    return out


@pytest.fixture
def secured(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001")
    # Every route is tried with a wrong token below: more than the default rate limit allows
    # (tests/security/test_token_limits.py proves the limit itself).
    with gateway(data, redis_url, api_token=TOKEN, auth_fail_limit=10_000) as c:
        yield c


def test_every_route_needs_the_token_but_health(secured):
    routes = http_routes(secured.app)
    families = {p.split("/")[2] if p.startswith(("/api/", "/nassav/")) else p.split("/")[1] for _, p in routes}
    assert {"resources", "resource", "downloads", "tasks", "source", "setting", "workers", "actors", "genres",
            "metrics", "docs", "openapi.json", "dashboard"} <= families | {p.split("/")[3] for _, p in routes
                                                                            if p.startswith("/nassav/")}
    # /health, and the web page's static shell (it holds no data: it loads to ask for the token).
    public = set(PUBLIC_PATHS) | set(web.PUBLIC_PATHS)
    for method, path in routes:
        if path in public:
            continue
        none = secured.request(method, path)
        assert none.status_code == 401, (method, path, none.status_code)
        assert none.headers.get("www-authenticate", "").startswith("Bearer"), path
        wrong = secured.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, (method, path, wrong.status_code)
    assert secured.get("/health").status_code == 200


def test_the_right_token_opens_every_route(secured):
    for method, path in http_routes(secured.app):
        if method == "DELETE" and path.startswith(("/api/resource/", "/nassav/api/resource/")):
            continue  # would delete the sample; its auth is covered above
        if path.endswith("/events"):
            continue  # a stream that never ends (SSE); its auth is covered above
        ok = secured.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, follow_redirects=False)
        assert ok.status_code not in (401, 403) and ok.status_code < 500, (method, path, ok.status_code, ok.text[:200])
    res = secured.get(f"/api/resources/?token={TOKEN}")
    assert res.status_code == 200 and res.json()["pagination"]["total"] == 1
    assert secured.get("/api/resources/", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_websocket_token_by_subprotocol_header_or_query(secured):
    with pytest.raises(WebSocketDisconnect):
        with secured.websocket_connect("/ws/tasks/") as ws:
            ws.receive_json()
    with pytest.raises(WebSocketDisconnect):
        with secured.websocket_connect("/ws/tasks/", subprotocols=["bearer", "wrong"]) as ws:
            ws.receive_json()
    with secured.websocket_connect("/ws/tasks/", subprotocols=["bearer", TOKEN]) as ws:
        assert ws.accepted_subprotocol == "bearer"
        assert ws.receive_json()["type"] == "queue_status"
    with secured.websocket_connect("/nassav/ws/tasks/", subprotocols=[f"bearer.{TOKEN}"]) as ws:
        assert ws.accepted_subprotocol == f"bearer.{TOKEN}"
        assert ws.receive_json()["type"] == "queue_status"
    with secured.websocket_connect(f"/ws/tasks/?token={TOKEN}") as ws:
        assert ws.receive_json()["type"] == "queue_status"
    with secured.websocket_connect("/ws/tasks/", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert ws.receive_json()["type"] == "queue_status"


def test_dashboard_and_docs_keep_a_path_limited_cookie(secured):
    res = secured.get(f"/dashboard/?token={TOKEN}")
    assert res.status_code == 200
    cookie = res.headers["set-cookie"]
    assert "Path=/dashboard" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert secured.get("/dashboard/queues/download").status_code == 200  # the cookie, no token
    assert secured.get("/api/resources/").status_code == 401  # not beyond its path
    secured.cookies.clear()
    assert secured.get("/dashboard/queues/download").status_code == 401
    assert secured.get(f"/docs?token={TOKEN}").status_code == 200
    assert secured.get("/docs/static/swagger-ui.css").status_code == 200


def test_no_token_means_open_on_loopback(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        assert c.get("/api/resources/").status_code == 200


def test_bind_check():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.8.0.1") and not is_loopback("0.0.0.0") and not is_loopback("nas.local")
    assert bind_problem(load(None, {})) is None
    assert bind_problem(load(None, {"NASSAV_HOST": "0.0.0.0", "NASSAV_API_TOKEN": TOKEN})) is None
    msg = bind_problem(load(None, {"NASSAV_HOST": "0.0.0.0"}))
    assert "NASSAV_API_TOKEN" in msg and "api_token" in msg
    # Beyond loopback a short token is as good as none (tests/security covers the CLI refusal).
    weak = bind_problem(load(None, {"NASSAV_HOST": "0.0.0.0", "NASSAV_API_TOKEN": "t"}))
    assert "at least 16" in weak and "token_urlsafe" in weak


@pytest.mark.parametrize("command", ["serve", "up"])
def test_refuses_to_start_on_a_public_address_without_a_token(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k not in ("NASSAV_API_TOKEN", "NASSAV_HOST")}
    data = tmp_path / "data"
    p = subprocess.run([sys.executable, "-m", "gateway.cli", command, "--host", "0.0.0.0", "--data-dir", str(data),
                        "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "without an API token" in lines[0] and "NASSAV_API_TOKEN" in lines[0]
    assert not (data / ".redis").exists()  # nothing was started
