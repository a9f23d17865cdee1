"""The live-worker registry: who runs which queues, for ``/health``, ``/api/workers`` and metrics.

A worker process adds :class:`WorkerRegistry` to its broker. After the worker boots, a thread
writes this process's record to ``nassav:workers`` every ``beat_s`` and keeps dramatiq's own
heartbeat fresh (see :func:`pipeline.broker.beat`); at shutdown the beat stops, and once the
worker has stopped the record is removed. Readers call :func:`live_workers` and
:func:`workers_per_queue`, so a record's shape and staleness are decided here only.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Iterable

import redis
from dramatiq import Middleware

from pipeline.broker import QUEUES, beat

log = logging.getLogger("nassav.worker")

WORKERS_KEY = "nassav:workers"
WORKER_STALE_S = 30  # a worker silent for this long is not counted as live
BEAT_S = 5.0


def process_id() -> str:
    """``host:pid``: this process's key in the registry."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerRegistry(Middleware):
    """Publishes this worker process while it runs (dramatiq middleware).

    Parameters:
        client: a sync Redis client.
        queues: the queues this process consumes, as listed in its record.
        threads: its worker threads, as listed in its record.
        beat_s: seconds between beats.
    """

    def __init__(self, client: redis.Redis, *, queues: Iterable[str], threads: int,
                 beat_s: float = BEAT_S):
        self.client = client
        self.queues = list(queues)
        self.threads = threads
        self.beat_s = beat_s
        self.me = process_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker,), daemon=True, name="heartbeat")
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        try:
            self.client.hdel(WORKERS_KEY, self.me)
        except redis.RedisError:
            pass

    def _run(self, broker: Any) -> None:
        started = time.time()
        while True:
            try:
                now = time.time()
                beat(self.client, broker, now)
                self.client.hset(WORKERS_KEY, self.me, json.dumps({
                    "id": self.me, "host": self.me.rsplit(":", 1)[0], "pid": os.getpid(),
                    "queues": self.queues, "threads": self.threads, "started_at": started,
                    "last_seen": now}))
            except redis.RedisError as e:
                log.warning("heartbeat failed: %s", e)
            if self._stop.wait(self.beat_s):
                return


def live_workers(records: Iterable[str], now: float, *,
                 include_stale: bool = False) -> list[dict[str, Any]]:
    """The registry's records (``HVALS nassav:workers``) with ``alive`` and ``last_seen_ago_s``,
    sorted by host and pid; stale ones only with ``include_stale``. Unreadable records are skipped."""
    out = []
    for raw in records:
        try:
            w = json.loads(raw)
        except ValueError:
            continue
        age = now - float(w.get("last_seen") or 0)
        w["alive"] = age < WORKER_STALE_S
        w["last_seen_ago_s"] = round(age, 1)
        if w["alive"] or include_stale:
            out.append(w)
    return sorted(out, key=lambda w: (w.get("host", ""), w.get("pid", 0)))


def workers_per_queue(workers: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Live worker processes per queue: every known queue, plus any other a worker named."""
    out = {q: 0 for q in QUEUES}
    for w in workers:
        if w.get("alive", True):
            for q in w.get("queues", []):
                out[q] = out.get(q, 0) + 1
    return out
