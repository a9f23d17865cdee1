"""``tools/old_client.py``, run as a process in front of a real gateway: the client's files at
``/`` (history routes get ``index.html``), ``/nassav/`` passed on with the browser's Host and
Origin (so the gateway's guards see one origin), the task WebSocket bridged both ways.
A stand-in ``dist/`` is enough here; the real client's walk is tests/compat/test_real_client.py."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.conftest import ROOT, free_port, stop_group, wait_for
from tests.live_server import live_gateway


@pytest.fixture
def proxied(tmp_path, redis_url):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>old client</title>")
    (dist / "assets" / "app.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("outside dist")
    with live_gateway(tmp_path / "data", redis_url) as gw:
        port = free_port()
        log = open(tmp_path / "proxy.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "tools.old_client", "--dist", str(dist),
                                 "--gateway", gw.base, "--port", str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        origin = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _answers(origin), 20, 0.2, "tools/old_client.py to answer")
            yield origin
        finally:
            stop_group(proc, timeout_s=10)
            log.close()


def _answers(origin: str) -> bool:
    try:
        return _get(origin + "/index.html")[0] == 200
    except OSError:
        return False


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_files_and_history_routes(proxied):
    assert _get(proxied + "/assets/app.js") == (200, b"console.log('app')")
    for path in ("/", "/resource/ABC-123", "/settings", "/assets/missing.js", "/..%2Fsecret.txt"):
        code, body = _get(proxied + path)
        assert code == 200 and b"old client" in body, (path, code, body[:80])


def test_api_passes_with_the_browsers_origin(proxied):
    code, body = _get(proxied + "/nassav/api/source/list", {"Origin": proxied})
    assert code == 200 and isinstance(json.loads(body)["data"], list), body[:200]
    # A body and a method other than GET reach the gateway, and its answer comes back whole.
    req = urllib.request.Request(proxied + "/nassav/api/setting", method="PUT",
                                 data=json.dumps({"enable_avatar": "maybe"}).encode(),
                                 headers={"Origin": proxied, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 400 and b"enable_avatar" in refused.value.read()
    # Another page's origin is still refused by the gateway behind the proxy.
    code, body = _get(proxied + "/nassav/api/source/list", {"Origin": "http://evil.example"})
    assert code == 403, body[:200]


def test_the_task_socket_is_bridged(proxied):
    ws_url = proxied.replace("http://", "ws://") + "/nassav/ws/tasks/"
    with connect(ws_url, origin=proxied, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "queue_status"
        ws.send(json.dumps({"action": "get_queue_status"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "queue_status"


def test_a_dist_without_index_html_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.old_client", "--dist", str(tmp_path),
                           "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "npm run build" in done.stderr, done.stderr
