"""Contract of ``pipeline/hls/curl_socket.py`` with curl_cffi, against a real HTTP server.

When curl_cffi changes the private shape the stall watchdog relies on, these tests fail
naming the curl_cffi version (in production the watchdog would silently lose its socket).
"""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import curl_cffi
import pytest
from curl_cffi import CurlOpt
from curl_cffi import requests as cffi

from pipeline.hls.curl_socket import UNKNOWN, CurlChanged, check_shape, track_socket

CHANGED = f"curl_cffi {curl_cffi.__version__} changed; update pipeline/hls/curl_socket.py"


class Body(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the socket stays open after the request

    def do_GET(self):
        body = b"x" * 1000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Body)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def peer_port(fd: int) -> int:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.getpeername()[1]
    finally:
        s.close()


def test_the_tracked_socket_is_the_connection_to_the_server(server):
    session = cffi.Session()
    session.curl_options[CurlOpt.MAXCONNECTS] = 1
    try:
        check_shape(session)
        sock_of = track_socket(session)
        assert sock_of() == UNKNOWN
        for _ in range(2):  # the callback survives curl_cffi's reset after a request
            r = session.get(f"http://127.0.0.1:{server}/seg.ts")
            assert r.status_code == 200 and len(r.content) == 1000
            assert sock_of() >= 0, f"{CHANGED}: no socket reported"
            assert peer_port(sock_of()) == server, CHANGED
    finally:
        session.close()


def test_a_reshaped_curl_cffi_is_named_and_leaves_the_socket_unknown(caplog):
    stand_in = SimpleNamespace(curl=SimpleNamespace(perform=lambda *a: None))  # no _curl
    with pytest.raises(CurlChanged, match=f"curl_cffi {curl_cffi.__version__} has no Curl._curl"):
        check_shape(stand_in)
    with caplog.at_level("ERROR", logger="nassav.hls"):
        assert track_socket(stand_in)() == UNKNOWN
        assert track_socket(stand_in)() == UNKNOWN
    said = [r.getMessage() for r in caplog.records if "Curl._curl" in r.getMessage()]
    assert len(said) == 1 and all(f"curl_cffi {curl_cffi.__version__}" in m for m in said)
    with pytest.raises(CurlChanged, match="Session.curl"):
        check_shape(SimpleNamespace())
