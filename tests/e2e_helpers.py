"""Helpers for end-to-end tests: run `nassav up` as a real process group, watch its events."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

from tests.conftest import ROOT, free_port, group_alive, stop_group, wait_for


def http(method: str, url: str, body: dict | None = None, timeout_s: float = 10) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


class Service:
    """`nassav up` in its own process group on a free port."""

    def __init__(self, config_path: Path, data_dir: Path, *, env_extra: dict | None = None,
                 drop_redis_env: bool = False):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        env = dict(os.environ)
        if drop_redis_env:
            env.pop("REDIS_URL", None)
            env.pop("NASSAV_REDIS_URL", None)
        env.update(env_extra or {})
        self.log = open(data_dir.parent / f"up-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "up", "--config", str(config_path),
             "--port", str(self.port), "--data-dir", str(data_dir)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 60) -> dict:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"nassav up exited with {self.proc.returncode}:\n{self.output()}")
            try:
                code, body = http("GET", self.base + "/health", timeout_s=2)
            except OSError:
                return None
            w = (body.get("data") or {}).get("workers") or {}
            return body if code == 200 and w.get("metadata") and w.get("download") else None
        return wait_for(ready, timeout_s, 0.2, "the service to be healthy with both workers")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.data_dir.parent / f"up-{self.port}.log").read_text(errors="replace")[-6000:]

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout_s)

    def group_alive(self) -> bool:
        return group_alive(self.proc.pid)

    def stop(self) -> None:
        stop_group(self.proc, signal.SIGINT, timeout_s=45)
        self.log.close()


class EventRecorder:
    """A WebSocket client that records every message in a thread."""

    def __init__(self, url: str):
        self.messages: list[dict] = []
        self._conn = connect(url, open_timeout=10)
        self.ws = self._conn.__enter__()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:
                return
            self.messages.append(json.loads(raw))

    def wait_type(self, type_: str, job_id: str | None = None, timeout_s: float = 120) -> dict:
        def find():
            for m in self.messages:
                if m.get("type") == type_ and (job_id is None or (m.get("data") or {}).get("task_id") == job_id):
                    return m
            return None
        return wait_for(find, timeout_s, 0.1, f"a {type_} event")

    def close(self) -> None:
        self._stop.set()
        try:
            self.ws.close()
        except Exception:
            pass
        self.thread.join(5)


def media_duration_s(path: Path) -> float:
    """The container's duration, after a full decode pass that must print no error."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    dec = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)
    assert dec.returncode == 0 and not dec.stderr.strip(), f"decode errors in {path}: {dec.stderr[:500]}"
    info = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", info.stderr)
    assert m, info.stderr[-500:]
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def wait_gone(pid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
