"""A local stand-in for an OpenAI-compatible chat-completions server (Ollama, llama.cpp's
server, hosted APIs): real HTTP on 127.0.0.1, answering ``POST /v1/chat/completions`` in the
API's own shape, and recording what it was sent.

``mode`` decides the answers and can be changed while it runs: ``ok`` (the reply is
``answer(text)``), ``slow`` (waits ``delay_s`` first), ``error`` (HTTP 500 with an OpenAI
error body), ``garbage`` (200 with a body that is not JSON), ``redirect`` (307 to another
host). With ``api_key`` set, a request
without ``Authorization: Bearer <key>`` gets 401 as the real APIs give it.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

PATH = "/v1/chat/completions"


def default_answer(text: str) -> str:
    """A reply that shows it went through the translator (and how it is cleaned)."""
    return f' "译 {text}" \n'


class FakeOpenAI:
    def __init__(self, *, mode: str = "ok", delay_s: float = 5.0, api_key: str | None = None,
                 answer: Callable[[str], str] = default_answer):
        self.mode, self.delay_s, self.api_key, self.answer = mode, delay_s, api_key, answer
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # a slow answer in progress ends now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up (the slow mode's point)
                    pass

            def _error(self, status: int, message: str, kind: str) -> None:
                self._send(status, json.dumps({"error": {"message": message, "type": kind,
                                                         "param": None, "code": None}}).encode())

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path != PATH:
                    return self._error(404, f"no route {self.path}", "invalid_request_error")
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._error(401, "Incorrect API key provided", "invalid_request_error")
                if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
                    return self._error(400, "model and messages are required", "invalid_request_error")
                if fake.mode == "slow":
                    fake._stop.wait(fake.delay_s)
                if fake.mode == "error":
                    return self._error(500, "model runner has unexpectedly stopped", "api_error")
                if fake.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.mode == "garbage":
                    return self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
                text = body["messages"][-1]["content"]
                self._send(200, json.dumps({
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body["model"], "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": fake.answer(text)}}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
                }, ensure_ascii=False).encode())

        return Handler


@contextmanager
def fake_openai(**kwargs: Any) -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI` for the block."""
    server = FakeOpenAI(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
