"""Reads the event stream for the notifier: one Redis consumer group across every worker.

Every worker serving the ``notify`` queue runs one :class:`Dispatcher`; the group
(``nassav-notify``) hands each event to one of them. An event is acknowledged after its
deliveries are recorded and their messages sent, so a worker that dies in between leaves it
pending, and another takes it over after ``claim_idle_ms``; the delivery records are created
"if absent", so that second reading makes no second delivery (nor sends a message for one
recorded before the death: ``pipeline/notify_recover.py`` re-sends those). A new group starts at the
stream's end: notifications are about what happens from now on, never a replay of history.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import redis
from redis.exceptions import ResponseError

from pipeline import events as ev
from pipeline.notifier import Notifier

log = logging.getLogger("nassav.notify")

GROUP = "nassav-notify"
BATCH = 200


class Dispatcher:
    def __init__(self, client: redis.Redis, notifier: Notifier, send: Callable[[str], None], *,
                 stream: str = ev.STREAM, group: str = GROUP, consumer: str | None = None,
                 claim_idle_ms: int = 60_000):
        self.client, self.notifier, self.send = client, notifier, send
        self.stream, self.group = stream, group
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self._last_claim = 0.0
        self.dispatched = 0

    def ensure_group(self) -> bool:
        """Create the group at the stream's end; True when it was created."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="$", mkstream=True)
            return True
        except ResponseError as e:
            if "BUSYGROUP" in str(e):
                return False
            raise

    def poll(self, block_ms: int | None = 1000) -> int:
        """Handle this consumer's pending entries, entries others left idle, then new ones
        (waiting up to ``block_ms``); returns how many events were handled."""
        total = 0
        if time.monotonic() - self._last_claim > self.claim_idle_ms / 2000:
            self._last_claim = time.monotonic()
            res = self.client.xautoclaim(self.stream, self.group, self.consumer,
                                         min_idle_time=self.claim_idle_ms, start_id="0-0", count=BATCH)
            total += self._handle(res[1] if res and len(res) > 1 else [])
        for start in ("0", ">"):
            while True:
                res = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=BATCH,
                                             block=block_ms if start == ">" else None)
                rows = [r for _, entries in res or [] for r in entries]
                if not rows:
                    break
                total += self._handle(rows)
                if len(rows) < BATCH:
                    break
        return total

    def _handle(self, rows: list) -> int:
        wanted = self.notifier.event_types()
        done = []
        for entry_id, fields in rows:
            if fields:  # a pending entry the stream has trimmed since comes back empty
                e = ev.Event.from_entry(entry_id, fields)
                if e.type in wanted:
                    for delivery_id in self.notifier.dispatch(e):
                        self.send(delivery_id)
                        self.dispatched += 1
            done.append(entry_id)
        if done:
            self.client.xack(self.stream, self.group, *done)
        return len(done)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; Redis trouble is waited out."""
        wait = 0.5
        created = False
        while not stop.is_set():
            try:
                if not created:
                    self.ensure_group()
                    created = True
                self.poll(block_ms=1000)
                wait = 0.5
            except ResponseError as e:
                if "NOGROUP" in str(e):  # the stream or the group was deleted under us
                    created = False
                    continue
                log.warning("notify dispatcher: %s; retrying in %.1f s", e, wait)
                stop.wait(wait)
                wait = min(wait * 2, 30.0)
            except (redis.RedisError, OSError) as e:
                log.warning("notify dispatcher: Redis unavailable (%s); retrying in %.1f s", e, wait)
                stop.wait(wait)
                wait = min(wait * 2, 30.0)
