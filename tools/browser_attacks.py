"""The browser attacks of issue 9 as plain requests, and a table of how a gateway answers them.

Each attack is what a hostile web page can make the user's browser send: simple cross-site
requests (``text/plain`` and forms need no CORS preflight), an EventSource or a WebSocket from
its origin, a dashboard form riding the cookies (cookies ignore ports), or any request at all
through a DNS name it rebinds to the gateway's address (the ``Host`` header gives it away).
Browsers cannot forge ``Origin`` or ``Host``; here they are set by hand to play the browser.

``run(base, library)`` sends them all, in order, and returns one :class:`Answer` each plus the
damage found on disk and in Redis. The security tests assert on it; the command prints the
table for the fault report, for this tree or for another one (e.g. the commit before the fix)::

    .venv/bin/python -m tools.browser_attacks                  # this tree, no token, then a token
    git archive 9baddde | tar -x -C /tmp/before
    .venv/bin/python -m tools.browser_attacks --tree /tmp/before
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVIL = "http://evil.example"
REBIND = "rebind.evil.example"
VICTIM = "DEMO-002"  # the library folder the attacks try to delete
QUEUED = ("DEMO-101", "DEMO-102", "DEMO-103")  # AVIDs the attacks try to queue


@dataclass(frozen=True)
class Attack:
    """One request a hostile page can make a browser send (``Host`` None: the gateway's own)."""

    kind: str  # "cross-site" | "rebinding"
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    websocket: bool = False
    stream: bool = False  # an SSE stream: read the status and the first bytes only
    host: str | None = None
    dashboard_cookies: bool = False  # send the nassav_token and a self-made __dd_csrf cookie


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def attacks(port: int, *, evil: str = EVIL) -> list[Attack]:
    """The catalogue, against a gateway on ``port``; ``evil`` is the attacking page's origin."""
    rebind_host = f"{REBIND}:{port}"
    rebind_origin = f"http://{rebind_host}"  # to the browser, the rebinding page IS same-origin
    plain = {"Origin": evil, "Content-Type": "text/plain;charset=UTF-8"}
    form = {"Origin": evil, "Content-Type": "application/x-www-form-urlencoded"}
    delete = _j({"actions": [{"action": "delete", "avid": VICTIM}]})
    return [
        Attack("cross-site", "text/plain POST deletes a library folder", "POST", "/api/resources/batch",
               plain, delete),
        Attack("cross-site", "text/plain POST without Origin (older browser)", "POST", "/api/resources/batch",
               {"Content-Type": "text/plain"}, delete),
        Attack("cross-site", "form POST deletes a library folder", "POST", "/api/resources/batch",
               form, b"x=" + delete),
        Attack("cross-site", "DELETE of a library folder", "DELETE", f"/api/resource/{VICTIM}", {"Origin": evil}),
        Attack("cross-site", "empty POST queues a download", "POST", f"/api/downloads/{QUEUED[0]}",
               {"Origin": evil}),
        Attack("cross-site", "text/plain POST queues downloads", "POST", "/api/downloads/batch_submit",
               plain, _j({"avids": [QUEUED[1]]})),
        Attack("cross-site", "text/plain POST overwrites a source cookie", "POST", "/api/source/cookie",
               plain, _j({"source": "missav", "cookie": "cf_clearance=attacker"})),
        Attack("cross-site", "PUT settings (JSON)", "PUT", "/api/setting",
               {"Origin": evil, "Content-Type": "application/json"}, _j({"download": {"concurrency": 1}})),
        Attack("cross-site", "text/plain PUT settings", "PUT", "/api/setting", plain,
               _j({"download": {"concurrency": 2}})),
        Attack("cross-site", "EventSource reads the event stream", "GET", "/api/events", {"Origin": evil},
               stream=True),
        Attack("cross-site", "EventSource on /nassav/api/events", "GET", "/nassav/api/events", {"Origin": evil},
               stream=True),
        Attack("cross-site", "WebSocket reads the event stream", "GET", "/ws/tasks/", {"Origin": evil},
               websocket=True),
        Attack("cross-site", "OPTIONS reads the dashboard (job ids)", "OPTIONS", "/dashboard/queues/download"),
        Attack("cross-site", "OPTIONS on an API route", "OPTIONS", "/api/resources/"),
        Attack("cross-site", "dashboard form POST with cookies only (other local port)", "POST",
               "/dashboard/requeue-message", {"Origin": evil, "Content-Type": "application/x-www-form-urlencoded"},
               b"__dd_csrf=forged&queue=download&id=nope", dashboard_cookies=True),
        Attack("cross-site", "dashboard form POST, cookies only, no Origin, foreign Referer", "POST",
               "/dashboard/delete-message", {"Referer": evil + "/page", "Content-Type":
                                             "application/x-www-form-urlencoded"},
               b"__dd_csrf=forged&queue=download&id=nope", dashboard_cookies=True),
        Attack("rebinding", "GET the library", "GET", "/api/resources/", {"Origin": rebind_origin},
               host=rebind_host),
        Attack("rebinding", "GET the settings", "GET", "/api/setting", host=rebind_host),
        Attack("rebinding", "PUT settings (JSON, same-origin to the browser)", "PUT", "/api/setting",
               {"Origin": rebind_origin, "Content-Type": "application/json"}, _j({"download": {"concurrency": 3}}),
               host=rebind_host),
        Attack("rebinding", "JSON POST deletes a library folder", "POST", "/api/resources/batch",
               {"Origin": rebind_origin, "Content-Type": "application/json"}, delete, host=rebind_host),
        Attack("rebinding", "JSON POST queues a download", "POST", "/api/downloads/batch_submit",
               {"Origin": rebind_origin, "Content-Type": "application/json"}, _j({"avids": [QUEUED[2]]}),
               host=rebind_host),
        Attack("rebinding", "EventSource reads the event stream", "GET", "/api/events",
               {"Origin": rebind_origin}, stream=True, host=rebind_host),
        Attack("rebinding", "WebSocket reads the event stream", "GET", "/ws/tasks/",
               {"Origin": rebind_origin}, websocket=True, host=rebind_host),
    ]


@dataclass
class Answer:
    attack: Attack
    status: int
    body: str  # the start of the answer (for a WebSocket: its first frame's bytes, decoded)

    @property
    def read(self) -> bool | None:
        """For a read (GET, OPTIONS, a stream, a WebSocket): whether the answer carried the
        service's data (a page, a list, events) rather than an error. None for a write, whose
        effect :func:`damage` finds on the gateway's side."""
        a = self.attack
        if a.method not in ("GET", "OPTIONS") and not a.websocket:
            return None
        return self.status in (101, 200) and bool(self.body.strip())


def _send_http(host: str, port: int, a: Attack, token_cookie: str | None, timeout_s: float) -> Answer:
    headers = {"Host": a.host or f"{host}:{port}", **a.headers}
    if a.body:
        headers["Content-Length"] = str(len(a.body))
    if a.dashboard_cookies:
        # What a page on another local port can arrange: its own __dd_csrf (cookies are not
        # port-isolated) next to the nassav_token the user's browser holds for /dashboard.
        jar = ["__dd_csrf=forged"] + ([f"nassav_token={token_cookie}"] if token_cookie else [])
        headers["Cookie"] = "; ".join(jar)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(a.method, a.path, body=a.body or None, headers=headers)
        res = conn.getresponse()
        if a.stream and res.status == 200:
            body = res.fp.readline().decode("utf-8", "replace") + res.fp.readline().decode("utf-8", "replace")
        else:
            body = res.read(2000).decode("utf-8", "replace")
        return Answer(a, res.status, body)
    finally:
        conn.close()


def _send_ws(host: str, port: int, a: Attack, timeout_s: float) -> Answer:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {a.path} HTTP/1.1", f"Host: {a.host or f'{host}:{port}'}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             *(f"{k}: {v}" for k, v in a.headers.items())]
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        if status == 101:
            deadline = time.monotonic() + timeout_s
            while len(rest) < 2 or b"queue_status" not in rest:
                if time.monotonic() > deadline:
                    break
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    break
                rest += chunk
            body = rest[2:].decode("utf-8", "replace") if len(rest) > 2 else ""
        else:
            body = rest.decode("utf-8", "replace")
        return Answer(a, status, body[:2000])


def send(base: str, a: Attack, *, token_cookie: str | None = None, timeout_s: float = 5.0) -> Answer:
    """Send one attack to the gateway at ``base`` (http://127.0.0.1:PORT)."""
    host, _, port = base.removeprefix("http://").partition(":")
    if a.websocket:
        return _send_ws(host, int(port), a, timeout_s)
    return _send_http(host, int(port), a, token_cookie, timeout_s)


@dataclass
class Damage:
    """What the attacks changed: each field False/empty when nothing was."""

    library_deleted: bool
    queued: list[str]
    settings_written: bool
    cookie_written: bool

    @property
    def none(self) -> bool:
        return not (self.library_deleted or self.queued or self.settings_written or self.cookie_written)


def damage(data_dir: Path, redis_url: str) -> Damage:
    """Look at the gateway's side: the victim's folder, the queued AVIDs, the settings and cookie files."""
    import redis

    from pipeline import overrides
    from pipeline import cookies
    from pipeline.claims import claim_key

    c = redis.Redis.from_url(redis_url)
    try:
        queued = [a for a in QUEUED if c.exists(claim_key(a))]
    finally:
        c.close()
    folder = data_dir / VICTIM
    return Damage(library_deleted=not (folder / f"{VICTIM}.json").exists(), queued=queued,
                  settings_written=overrides.path(data_dir).exists(),
                  cookie_written=cookies.path(data_dir).exists())


def run(base: str, *, token_cookie: str | None = None, evil: str = EVIL) -> list[Answer]:
    """Every attack against ``base``, in order."""
    port = int(base.rsplit(":", 1)[1])
    return [send(base, a, token_cookie=token_cookie) for a in attacks(port, evil=evil)]


def table(answers: list[Answer]) -> str:
    rows = [f"{'kind':<11} {'attack':<58} {'answer':>6}  read data"]
    for ans in answers:
        got = {None: "-", True: "yes", False: "no"}[ans.read]
        rows.append(f"{ans.attack.kind:<11} {ans.attack.name[:58]:<58} {ans.status:>6}  {got}")
    return "\n".join(rows)


def summary(answers: list[Answer]) -> dict[str, dict[str, int]]:
    """Per kind: attempts, and how many got each status."""
    out: dict[str, dict[str, int]] = {}
    for ans in answers:
        k = out.setdefault(ans.attack.kind, {"attempts": 0})
        k["attempts"] += 1
        k[str(ans.status)] = k.get(str(ans.status), 0) + 1
    return out


def _serve(tree: Path, data_dir: Path, redis_url: str, port: int, token: str | None) -> subprocess.Popen:
    env = {**os.environ, "NASSAV_REDIS_URL": redis_url, "PYTHONPATH": str(tree)}
    env.pop("NASSAV_API_TOKEN", None)
    if token:
        env["NASSAV_API_TOKEN"] = token
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(data_dir),
                             "--port", str(port)], cwd=tree, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                    help="the source tree whose gateway is attacked (default: this one)")
    args = ap.parse_args()
    import signal

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline.embedded_redis import EmbeddedRedis
    from tests.api_helpers import put_resource
    from tests.conftest import free_port, wait_for

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        for token in (None, "attack-test-token-0123456789"):
            import redis

            c = redis.Redis.from_url(server.url)
            c.flushall()
            c.close()
            data = Path(tmp) / ("data-token" if token else "data")
            put_resource(data, VICTIM)
            port = free_port()
            proc = _serve(Path(args.tree).resolve(), data, server.url, port, token)
            try:
                def up() -> bool:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                        return True
                    except OSError:
                        return proc.poll() is not None
                wait_for(up, 30, 0.1, "the gateway")
                if proc.poll() is not None:
                    print(proc.stderr.read().decode(), file=sys.stderr)  # type: ignore[union-attr]
                    return 1
                answers = run(f"http://127.0.0.1:{port}", token_cookie=token)
                hurt = damage(data, server.url)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(15)
            print(f"\n== {args.tree} — {'token set' if token else 'no token'} ==")
            print(table(answers))
            print(json.dumps(summary(answers)))
            print(f"damage: {hurt}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
