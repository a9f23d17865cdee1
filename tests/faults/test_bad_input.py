"""Bad input at the gateway: crafted AVIDs, traversal through static mounts, oversized bodies,
a WebSocket flood from one client, and a schemathesis fuzz run over ``/openapi.json``.

One ``nassav serve`` process (real HTTP, real Redis) for the module. Every AVID-taking
operation listed in ``/openapi.json`` (path parameter, query parameter, JSON body field) gets
each crafted value; the answer is a 4xx (a 400 naming the accepted forms whenever the value
reached the handler) and no file appears anywhere outside the data dir, nor in it.
"""

from __future__ import annotations

import http.client as httpc
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import redis

from tests.conftest import clean_keys
from tests.e2e_helpers import http
from tests.faults.conftest import Cluster
from tests.figures import record
from tools.fixture_site import FixtureSite

ACCEPTED_FORMS = "accepted forms"

CRAFTED = {
    "dot-dot-slash": "../../../../etc/passwd",
    "encoded traversal": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "encoded slashes": "..%2F..%2F..%2Ftmp%2Fpwned",
    "double-encoded": "%252e%252e%252f%252e%252e%252fetc",
    "absolute path": "/etc/passwd",
    "backslashes": "..\\..\\..\\windows\\win.ini",
    "avid then traversal": "ABC-123/../../../tmp/pwned",
    "dot": ".",
    "dot-dot": "..",
    "NUL": "ABC-123\x00.mp4",
    "NUL inside": "ABC\x00-123",
    "newline inside": "ABC\n-123",
    "CRLF header split": "ABC-123\r\nX-Injected: 1",
    "escape sequence": "\x1b[31mABC-123",
    "tab inside": "ABC\t-123",
    "DEL": "ABC-123\x7f",
    "10 kB": "A" * 10_000,
    "10 kB digits": "ABC-" + "1" * 10_000,
    "31 chars": "ABCDEFGHIJKLMNOPQRSTUVWXYZ-1234",
    "fullwidth": "ＡＢＣ-１２３",
    "cyrillic": "АВС-123",
    "unicode hyphen": "ABC\u2010123",
    "minus sign": "ABC\u2212123",
    "arabic-indic digits": "ABC-\u0661\u0662\u0663",
    "zero-width space": "ABC-\u200b123",
    "right-to-left override": "ABC-123\u202e4pm.exe",
    "long s folds to S": "\u017fsis-001",
    "dotless i folds to I": "abc\u0131-123",
    "ligature folds to FF": "\ufb00-123",
    "sharp s folds to SS": "stra\u00dfe-1",
    "shell": "ABC-123;rm -rf ~",
    "command substitution": "$(id)-123",
    "sql": "ABC-123' OR '1'='1",
    "template": "{{7*7}}-123",
    "format string": "%n%s%x-123",
}


def _tree(root: Path) -> set[str]:
    out = set()
    for p in root.rglob("*"):
        name = str(p.relative_to(root))
        if not name.endswith(("-wal", "-shm", "-journal")):
            out.add(name)
    return out


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, redis_url):
    root = tmp_path_factory.mktemp("bad-input")
    client = redis.Redis.from_url(redis_url)
    clean_keys(client)
    site = FixtureSite.start(titles=["DEMO-001"], stream_kind="clear", duration_s=2.0, segment_s=1.0)
    c = Cluster(root, site, redis_url)
    try:
        c.serve()
        c.wait_healthy()
        yield c, client
    finally:
        c.stop()
        site.stop()
        clean_keys(client)
        client.close()


def _operations(base: str) -> list[tuple[str, str, str]]:
    """(method, path template, where the AVID goes) for every AVID-taking operation."""
    code, spec = http("GET", base + "/openapi.json")
    assert code == 200, "the gateway serves /openapi.json"
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            params = {(p["name"], p["in"]) for p in op.get("parameters", [])}
            props = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}) \
                .get("schema", {}).get("properties") or {}
            if ("avid", "path") in params:
                ops.append((method.upper(), path, "path"))
            if ("avid", "query") in params:
                ops.append((method.upper(), path, "query"))
            if "avid" in props:
                ops.append((method.upper(), path, "body"))
            if "avids" in props:
                ops.append((method.upper(), path, "body-list"))
    return ops


def _send(base: str, method: str, path: str, *, body: bytes | None = None,
          timeout_s: float = 10) -> tuple[int, dict | str]:
    """A raw request: the path goes on the wire exactly as given (no client-side cleaning)."""
    u = urllib.parse.urlsplit(base)
    conn = httpc.HTTPConnection(u.hostname, u.port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def test_crafted_avids_are_rejected_and_nothing_is_written(gateway, tmp_path_factory):
    c, client = gateway
    ops = _operations(c.base)
    assert any(w == "path" for _, _, w in ops), ops
    outside_root = c.root.parent
    before_outside = {n for n in _tree(outside_root) if not n.startswith(str(c.root.name))}
    before_root = _tree(c.root)
    passwd = os.stat("/etc/passwd").st_mtime_ns
    checked = 0
    problems = []
    for label, value in CRAFTED.items():
        for method, template, where in ops:
            if where == "path":
                # "%" and "/" go on the wire as given (pre-encoded traversal stays encoded once).
                segment = urllib.parse.quote(value, safe="%/")
                path = template.replace("{avid}", segment)
                decoded = urllib.parse.unquote(segment)
                # A "/" makes no route match; so does a newline, which Starlette's Mount
                # pattern (".*") does not cross: both are a 404 without reaching a handler.
                reached = not any(ch in decoded for ch in "/\r\n")
                code, body = _send(c.base, method, path)
            elif where == "query":
                path = template + "?" + urllib.parse.urlencode({"avid": value})
                reached = True
                try:
                    code, body = _send(c.base, method, path, timeout_s=5)
                except TimeoutError:  # e.g. the event stream opened: the value was taken as an AVID
                    problems.append((label, method, template, "accepted (no answer in 5 s)", ""))
                    continue
            else:
                payload = {"avid": value} if where == "body" else {"avids": [value]}
                reached = True
                code, body = _send(c.base, method, template, body=json.dumps(payload).encode())
            checked += 1
            message = body.get("message", "") if isinstance(body, dict) else str(body)
            if where == "body-list" and code in (200, 202) and isinstance(body, dict):
                # A batch answers per item: each item must be a 400 naming the forms.
                items = body.get("data") or {}
                rows = items.get("results", items) if isinstance(items, dict) else items
                text = json.dumps(rows, ensure_ascii=False)
                if not ('"code": 400' in text or '"code":400' in text) or ACCEPTED_FORMS not in text:
                    problems.append((label, method, template, code, text[:200]))
                continue
            if not 400 <= code < 500:
                problems.append((label, method, template, code, message[:200]))
            elif reached and (code != 400 or ACCEPTED_FORMS not in message):
                problems.append((label, method, template, code, message[:200]))
    assert not problems, "crafted AVIDs not refused with a 400 naming the accepted forms:\n" + \
        "\n".join(map(str, problems))
    assert not client.keys("nassav:claim:*") and not client.keys("nassav:job:*"), "a crafted AVID was queued"
    after_root = _tree(c.root)
    new = sorted(n for n in after_root - before_root if not n.startswith("data/logs"))
    assert not new, f"files appeared: {new}"
    after_outside = {n for n in _tree(outside_root) if not n.startswith(str(c.root.name))}
    assert after_outside == before_outside, sorted(after_outside ^ before_outside)
    assert os.stat("/etc/passwd").st_mtime_ns == passwd
    record("Bad input: crafted AVIDs", values=len(CRAFTED), operations=len(ops), requests=checked,
           non_4xx=0, files_written=0, recover_s=0, data_lost="none")


def test_static_mounts_do_not_traverse(gateway):
    c, _ = gateway
    probes = ["/docs/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
              "/docs/static/../../../../../etc/passwd",
              "/docs/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
              "/web/..%2f..%2f..%2f..%2fetc%2fpasswd",
              "/web/../../../../etc/passwd",
              "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
              "/docs/static/..\\..\\..\\..\\etc\\passwd",
              "/api/resource/cover?avid=..%2F..%2F..%2Fetc%2Fpasswd",
              "/api/actors/..%2F..%2F..%2Fetc%2Fpasswd/avatar",
              "/api/events?avid=..%2F..%2Fetc&last_id=0"]
    for path in probes:
        code, body = _send(c.base, "GET", path, timeout_s=5)
        text = body if isinstance(body, str) else json.dumps(body)
        assert 400 <= code < 500, (path, code, text[:200])
        assert "root:" not in text, f"{path} leaked /etc/passwd"
    record("Bad input: traversal through static mounts and query/path ids", probes=len(probes),
           non_4xx=0, leaked=0, recover_s=0, data_lost="none")


def _raw_status(base: str, head: bytes, chunks=()) -> int | None:
    """Send ``head`` then ``chunks`` on a raw socket; the status the server answers, or None
    when it closed the connection without one."""
    import socket

    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=20) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer may already be in our buffer
        try:
            data = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else None


def test_oversized_bodies_are_refused(gateway):
    c, _ = gateway
    size = 3 << 20
    # Declared: the Content-Length alone is enough to refuse, before any body byte is read.
    declared = _raw_status(c.base, (f"POST /api/downloads/batch_submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode())
    assert declared == 413, declared
    # Streamed without a Content-Length (chunked): refused once more than the limit has arrived.
    piece = b"[" + b'"ABC-123",' * 6000

    def chunked():
        sent = 0
        while sent < size:
            yield b"%x\r\n%s\r\n" % (len(piece), piece)
            sent += len(piece)
        yield b"0\r\n\r\n"
    streamed = _raw_status(c.base, b"POST /api/resource HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                                   b"\r\nTransfer-Encoding: chunked\r\n\r\n", chunked())
    assert streamed in (413, None), streamed
    code, _ = http("GET", c.base + "/health")
    assert code == 200
    record("Bad input: oversized bodies", declared=str(declared),
           chunked=str(streamed or "connection closed"), recover_s=0, data_lost="none")


FLOOD = 200


def test_websocket_flood_from_one_client(gateway):
    """One client opens 200 task WebSockets: the gateway stays responsive, the client gets at
    most its bound (the rest are told why and closed), and once it closes them it can
    connect again."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    c, _ = gateway
    url = c.base.replace("http://", "ws://") + "/ws/tasks/"
    opened, refused, reasons = [], 0, set()

    def one():
        ws = connect(url, open_timeout=5).__enter__()
        try:
            msg = json.loads(ws.recv(timeout=5))
        except BaseException:
            ws.close()
            raise
        if msg.get("type") != "queue_status":
            ws.close()
            raise ConnectionRefusedError(msg.get("message", str(msg)))
        return ws

    t0 = time.monotonic()
    try:
        for _ in range(FLOOD):
            try:
                opened.append(one())
            except (WebSocketException, TimeoutError, OSError) as e:
                refused += 1
                reasons.add(str(e)[:120])
        flood_s = time.monotonic() - t0
        t1 = time.monotonic()
        code, _ = http("GET", c.base + "/health", timeout_s=5)
        health_s = time.monotonic() - t1
        assert code == 200 and health_s < 2, f"/health took {health_s:.2f} s during the flood"
    finally:
        for ws in opened:
            try:
                ws.close()
            except Exception:
                pass
    accepted = len(opened)
    assert refused > 0, (f"no per-client bound on WebSocket connections: all {FLOOD} from one "
                         "address were accepted")
    assert accepted + refused == FLOOD and accepted >= 1
    m = re.search(r"limit (\d+)", " ".join(reasons))
    assert m and accepted <= int(m.group(1)), f"{accepted} accepted; refusals said {reasons}"

    def again():
        try:
            one().close()
            return True
        except (WebSocketException, TimeoutError, OSError):
            return False
    t2 = time.monotonic()
    from tests.conftest import wait_for
    wait_for(again, 10, 0.2, "a new connection to be accepted once the flood is closed")
    record("Bad input: WebSocket flood from one client", attempted=FLOOD, accepted=accepted,
           refused=refused, bound=int(m.group(1)), refusal=sorted(reasons)[0],
           flood_s=round(flood_s, 1), health_during_flood_s=round(health_s, 2),
           recover_s=round(time.monotonic() - t2, 1), data_lost="none")


def test_schemathesis_finds_no_server_error(gateway, tmp_path):
    c, _ = gateway
    exe = shutil.which("schemathesis", path=str(Path(os.sys.executable).parent)) or shutil.which("schemathesis")
    assert exe, "schemathesis is not installed (a test extra: pip install -e '.[test]')"
    code, _ = http("GET", c.base + "/openapi.json")
    assert code == 200, f"GET /openapi.json answered {code}: the fuzzing has no schema to read"
    t0 = time.monotonic()
    # The SSE stream (/api/events) never ends by design: every fuzzed request would wait for
    # the request timeout, so it is left out here (its bad parameters are probed above).
    proc = subprocess.run(
        [exe, "run", c.base + "/openapi.json", "--checks", "not_a_server_error",
         "--phases", "coverage,fuzzing", "-n", "10", "--seed", "1", "--request-timeout", "10",
         "--exclude-path-regex", "/events$", "--max-failures", "5", "--no-color"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env=dict(os.environ, SCHEMATHESIS_HOOKS=""))
    took = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"schemathesis found server errors:\n{out[-4000:]}"
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    code, _ = http("GET", c.base + "/health")
    assert code == 200, "the gateway is still healthy after the fuzz run"
    record("Bad input: schemathesis fuzz of /openapi.json", cases=int(m.group(1)) if m else None,
           server_errors=0, run_s=round(took, 1), recover_s=0, data_lost="none")
