"""Harness of the fault suite: the gateway and the workers as separate process groups on one
Redis, the fixture site as the internet, and the figures each test reports.

Every test here runs real processes (``nassav serve``, ``nassav worker``), a real Redis and
the fixture site over real HTTP; nothing is mocked. Figures (time to redelivery, time to
recover, …) are reported with ``tests.figures.record`` for ``tools/fault_report.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

import redis

from pipeline.events import Event, Events
from pipeline.embedded_redis import find_redis_server
from tests.conftest import ROOT, free_port, stop_group, wait_for
from tests.e2e_helpers import http, media_duration_s


TERMINAL_EVENTS = ("task_completed", "task_failed")


class Cluster:
    """``nassav serve`` and ``nassav worker`` processes on one Redis, one process group each.

    Parameters:
        root: a temp dir for the config, the data dir (``root/data``) and the processes' log.
        site: the fixture site every source, catalogue and CDN points at.
        redis_url: the Redis every process uses.
        extra: config keys merged over the fixture's config.
    """

    def __init__(self, root: Path, site, redis_url: str, *, extra: dict | None = None,
                 data_dir: Path | None = None):
        self.root = root
        self.site = site
        self.redis_url = redis_url
        self.data = data_dir or root / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cfg = site.write_config(root / "nassav.yaml", data_dir=self.data, redis_url=redis_url,
                                     extra=extra)
        self.env = dict(os.environ, NASSAV_REDIS_URL=redis_url)
        self.env.pop("REDIS_URL", None)
        self.log_path = root / "cluster.log"
        self.log = open(self.log_path, "ab")
        self.procs: dict[str, subprocess.Popen] = {}
        self.preexec: dict[str, Any] = {}

    # -- processes ------------------------------------------------------------------------

    def start(self, name: str, *args: str, preexec_fn=None) -> subprocess.Popen:
        """Start ``nassav <args>`` as process group ``name`` (a name may be reused once dead)."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is still running")

        def setup() -> None:
            os.setsid()
            if preexec_fn:
                preexec_fn()

        p = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args, "--config", str(self.cfg),
                              "--port", str(self.port)],
                             cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                             preexec_fn=setup)
        self.procs[name] = p
        return p

    def serve(self) -> subprocess.Popen:
        return self.start("gateway", "serve")

    def worker(self, queue: str, name: str | None = None, **kw: Any) -> subprocess.Popen:
        return self.start(name or queue, "worker", "--queues", queue, **kw)

    def worker_id(self, name: str) -> str:
        """The ``host:pid`` the worker stamps on its stage events."""
        import socket

        return f"{socket.gethostname()}:{self.procs[name].pid}"

    def name_of(self, worker_id: str) -> str | None:
        pid = int(worker_id.rsplit(":", 1)[1])
        return next((n for n, p in self.procs.items() if p.pid == pid), None)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to the whole group ``name`` (the worker and its ffmpeg); returns when."""
        p = self.procs[name]
        at = time.monotonic()
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            p.wait(10)
        return at

    def wait_healthy(self, *, metadata: int = 0, download: int = 0, timeout_s: float = 60) -> dict:
        def ready():
            for n, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(f"{n} exited with {p.returncode}:\n{self.output()}")
            try:
                code, body = http("GET", self.base + "/health", timeout_s=2)
            except OSError:
                return None
            w = ((body or {}).get("data") or {}).get("workers") or {}
            ok = code == 200 and w.get("metadata", 0) >= metadata and w.get("download", 0) >= download
            return body if ok else None
        return wait_for(ready, timeout_s, 0.2, f"gateway + {metadata} metadata + {download} download workers")

    def post(self, avid: str, timeout_s: float = 10) -> tuple[int, dict]:
        return http("POST", f"{self.base}/api/downloads/{avid}", timeout_s=timeout_s)

    def submit(self, avid: str) -> str:
        code, body = self.post(avid)
        assert code == 202, (code, body)
        return body["data"]["job_id"]

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-8000:]

    def stop(self) -> None:
        for p in self.procs.values():
            stop_group(p, signal.SIGTERM, timeout_s=20)
        self.log.close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """A redis-server of our own on a fixed free port with AOF on, so it can be stopped and
    started again at the same URL (never the shared 6379 one)."""

    def __init__(self, data_dir: Path):
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.binary = find_redis_server()
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 15) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--logfile", str(self.dir / "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        c = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            def up():
                if self.proc.poll() is not None:
                    raise AssertionError(f"redis-server exited: {(self.dir / 'redis.log').read_text()[-2000:]}")
                try:
                    return c.ping()
                except (redis.ConnectionError, redis.BusyLoadingError, OSError):
                    return False
            wait_for(up, timeout_s, 0.05, "redis-server to answer")
        finally:
            c.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown that flushes the AOF (what a service restart does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- reading the outcome --------------------------------------------------------------------

def events(client: redis.Redis) -> list[Event]:
    return Events(client).after("0", count=1_000_000)


def wait_terminal(client: redis.Redis, job_ids: Iterable[str], timeout_s: float,
                  what: str = "") -> dict[str, Event]:
    """Wait until every job has a terminal event; returns job id → its first terminal event."""
    want = set(job_ids)

    def done():
        got = {}
        for e in events(client):
            if e.type in TERMINAL_EVENTS and e.job_id in want and e.job_id not in got:
                got[e.job_id] = e
        return got if len(got) == len(want) else None
    return wait_for(done, timeout_s, 0.25, what or f"{len(want)} job(s) to end")


def check_final_files(data_dir: Path, avid: str, *, expected_duration_s: float | None = None) -> list[str]:
    """Every file under a final name in the AVID's folder is whole; returns their names.

    ``{AVID}.mp4`` must decode fully (and last ``expected_duration_s`` ± 2 % when given),
    ``.json`` parse, ``.nfo`` be XML, images open. Temp files (``.name.*.tmp``) are not final.
    """
    from PIL import Image

    folder = data_dir / avid
    if not folder.is_dir():
        return []
    names = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        names.append(p.name)
        if p.suffix == ".mp4":
            d = media_duration_s(p)
            if expected_duration_s is not None:
                assert abs(d - expected_duration_s) <= 0.02 * expected_duration_s, \
                    f"{p.name} lasts {d:.2f} s, expected {expected_duration_s:.2f} s ± 2 %"
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        elif p.suffix == ".nfo":
            ET.fromstring(p.read_bytes())
        elif p.suffix in (".jpg", ".jpeg", ".png"):
            with Image.open(p) as im:
                im.load()
    return names


def stray_temps(data_dir: Path, avid: str) -> list[str]:
    folder = data_dir / avid
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.is_dir() else []
