"""Raw HTTP/1.1 on asyncio streams, for load and slow-client tests against a live gateway.

A test needs hundreds of requests in flight at once from one client, or sockets that hold
a request half-sent: an HTTP client library would queue the first and never do the second.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int  # 0: the connection failed or closed before a status line
    body: bytes
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(method: str, path: str, port: int, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> bytes:
    """One request that asks the server to close the connection after answering."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return Answer(0, raw, "no status line")
    return Answer(int(parts[1]), body)


async def send(port: int, data: bytes, *, timeout_s: float = 60) -> Answer:
    """Send ``data`` on a fresh connection and read the answer until the server closes."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout_s)
    except (OSError, asyncio.TimeoutError) as e:
        return Answer(0, b"", f"connect: {e!r}")
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout_s)
        return parse_answer(raw)
    except (OSError, asyncio.TimeoutError) as e:
        return Answer(0, b"", f"read: {e!r}")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def burst(port: int, requests: list[bytes], *, timeout_s: float = 60) -> tuple[list[Answer], float]:
    """Every request on its own connection, all at once; the answers and the wall time (s)."""
    t0 = time.monotonic()
    answers = await asyncio.gather(*(send(port, r, timeout_s=timeout_s) for r in requests))
    return list(answers), time.monotonic() - t0


async def trickle(port: int, data: bytes, *, every_s: float, max_bytes: int) -> tuple[float | None, bytes]:
    """Send ``data`` one byte every ``every_s`` (at most ``max_bytes`` bytes) until the server
    closes the connection: (seconds from connecting to the close, or None if still open after
    the last byte plus ``every_s``; what the server sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    closed_at: list[float] = []
    got = asyncio.ensure_future(reader.read())
    got.add_done_callback(lambda _: closed_at.append(time.monotonic()))
    try:
        for b in data[:max_bytes]:
            if got.done():
                break
            try:
                writer.write(bytes([b]))
                await writer.drain()
            except OSError:
                break
            await asyncio.wait({got}, timeout=every_s)
        if not got.done():
            await asyncio.wait({got}, timeout=every_s)
        if not got.done():
            return None, b""
        try:
            raw = got.result()
        except OSError:
            raw = b""
        return closed_at[0] - t0, raw
    finally:
        got.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
