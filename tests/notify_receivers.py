"""Local stand-ins for what notifications reach: real HTTP servers on 127.0.0.1, in a thread.

:class:`Receiver` is a webhook receiver that records every request, checks the
``X-Nassav-Signature`` HMAC when given the secret, and answers 500 to the first ``fail_first``
requests. :class:`FakeMediaServer` answers Jellyfin's / Emby's ``POST /Library/Media/Updated``
or Plex's ``GET /library/sections/{id}/refresh?path=`` as those servers do (401 without the
right key, 404 for another route or section) and records the paths it was asked to rescan.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class _Server:
    fail_first: int = 0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "_Server":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
                code, reply = owner.answer(req)
                data = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, req: Request) -> int:
        with self.lock:
            self.requests.append(req)
            return len(self.requests)

    def answer(self, req: Request) -> tuple[int, Any]:
        raise NotImplementedError


@dataclass
class Receiver(_Server):
    """A webhook receiver: 500 for the first ``fail_first`` requests, then 200."""

    secret: str | None = None

    def answer(self, req: Request) -> tuple[int, Any]:
        if self.secret is not None:
            got = req.headers.get("x-nassav-signature", "")
            want = "sha256=" + hmac.new(self.secret.encode(), req.body, hashlib.sha256).hexdigest()
            req.signature_ok = hmac.compare_digest(got, want)
        n = self.record(req)
        if req.signature_ok is False:
            return 401, {"error": "bad signature"}
        if n <= self.fail_first:
            return 500, {"error": f"failing on purpose ({n} of {self.fail_first})"}
        return 200, {"ok": True}


@dataclass
class FakeMediaServer(_Server):
    """Jellyfin, Emby or Plex, as far as a folder rescan goes."""

    kind: str = "jellyfin"
    key: str = "k"
    section: str = "1"
    rescanned: list[str] = field(default_factory=list)

    def answer(self, req: Request) -> tuple[int, Any]:
        self.record(req)
        if self.kind == "plex":
            if req.headers.get("x-plex-token") != self.key and req.query.get("X-Plex-Token") != [self.key]:
                return 401, {"error": "unauthorized"}
            m = re.fullmatch(r"/library/sections/(\d+)/refresh", req.path)
            if req.method not in ("GET", "PUT") or not m or m.group(1) != self.section:
                return 404, {"error": "no such section"}
            path = (req.query.get("path") or [""])[0]
            if not path:
                return 400, {"error": "path missing"}
            self.rescanned.append(path)
            return 200, {}
        token = req.headers.get("x-emby-token") or (req.query.get("api_key") or [""])[0]
        if token != self.key:
            return 401, {"error": "unauthorized"}
        if req.method != "POST" or req.path not in ("/Library/Media/Updated", "/emby/Library/Media/Updated"):
            return 404, {"error": "no such route"}
        try:
            updates = req.json()["Updates"]
            self.rescanned.extend(u["Path"] for u in updates)
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "body must be {Updates: [{Path, UpdateType}]}"}
        return 204, None
