"""Shared fixtures: a real Redis (the embedded one, or REDIS_URL when set), free ports, process groups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from pipeline.embedded_redis import EmbeddedRedis
from pipeline.redis_client import connect

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """REDIS_URL when set (CI may point at a shared server), else a private embedded Redis."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def clean_keys(client: redis.Redis) -> None:
    for pattern in ("nassav:*", "nassav-dramatiq:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def r(redis_url):
    """A client as the product opens them (replies are ``str``), on clean nassav keys."""
    client = connect(redis_url)
    clean_keys(client)
    yield client
    clean_keys(client)
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
    """Stop a process started with start_new_session=True and everything in its group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate, timeout_s: float, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def needs(reason: str) -> None:
    """Skip a test whose machine lacks what it needs (a tmpfs mount, a second file system) —
    except in CI (``CI`` set, as `.ci/run` runs), where that machine has it: there the missing
    part fails the test, so a regression can never pass as a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI's machine provides it, so this test must run there")
    pytest.skip(reason)
