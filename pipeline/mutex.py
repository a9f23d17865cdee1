"""The global download mutex: N slots across every machine, each with an owner token.

The old backend's lock had no owner and a 1-hour expiry, so a long download lost it and a
second one started. Here a slot is a key holding the owner's token with a short TTL
(``ttl_ms`` ≤ 60 s); a renewal thread extends it every ``ttl_ms / 3`` while the download
runs; only the owner can renew or release it; a dead owner's slot frees within the TTL.
If renewal fails (the slot expired or was taken), ``lost`` is set so the download stops.
"""

from __future__ import annotations

import threading
import time
import uuid

import redis

from pipeline.errors import Cancelled
from pipeline.lua import RELEASE_IF_HELD, RENEW_IF_HELD

PREFIX = "nassav:mutex:"


class Mutex:
    """``limit`` slots named ``name``; one instance per holder attempt."""

    def __init__(self, client: redis.Redis, *, name: str = "download", limit: int = 1,
                 ttl_ms: int = 30_000, token: str | None = None):
        if limit < 1:
            raise ValueError("limit must be ≥ 1")
        self.client, self.name, self.limit, self.ttl_ms = client, name, limit, ttl_ms
        self.token = token or uuid.uuid4().hex
        self.slot: int | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._renew = client.register_script(RENEW_IF_HELD)
        self._release = client.register_script(RELEASE_IF_HELD)

    def key(self, slot: int) -> str:
        return f"{PREFIX}{self.name}:{slot}"

    def try_acquire(self) -> bool:
        for slot in range(self.limit):
            if self.client.set(self.key(slot), self.token, nx=True, px=self.ttl_ms):
                self.slot = slot
                self.lost.clear()
                return True
        return False

    def acquire(self, *, timeout_s: float | None = None, poll_s: float = 0.5,
                cancel: threading.Event | None = None, on_wait=None) -> None:
        """Block until a slot is ours (or ``timeout_s`` passes → TimeoutError)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        waited = False
        while not self.try_acquire():
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled while waiting for the download slot")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"mutex {self.name!r}: no free slot within {timeout_s} s")
            if not waited and on_wait:
                on_wait()
            waited = True
            time.sleep(poll_s)
        self._start_renewal()

    def renew(self) -> bool:
        if self.slot is None:
            return False
        return bool(self._renew(keys=[self.key(self.slot)], args=[self.token, self.ttl_ms]))

    def release(self) -> bool:
        """Release our slot; a no-op (False) when we no longer own it."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        self._renewer = None
        if self.slot is None:
            return False
        deadline = time.monotonic() + self.ttl_ms / 1000
        while True:
            try:
                ok = bool(self._release(keys=[self.key(self.slot)], args=[self.token]))
                break
            except redis.RedisError:
                # Redis briefly away: a slot left behind would hold every other download back
                # for a whole TTL, so keep trying until it would have expired anyway.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        self.slot = None
        return ok

    def holders(self) -> dict[int, str]:
        out = {}
        for slot in range(self.limit):
            v = self.client.get(self.key(slot))
            if v is not None:
                out[slot] = v
        return out

    def _start_renewal(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name=f"mutex-renew-{self.name}",
                                         daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        interval = self.ttl_ms / 3000.0
        while not self._stop.wait(interval):
            try:
                ok = self.renew()
            except redis.RedisError:
                # Redis briefly away: keep trying until the TTL would have run out.
                ok = None
            if ok is False:
                self.lost.set()
                return

    def __enter__(self) -> "Mutex":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
