"""``nassav up``: the whole service on one machine, stopped cleanly by Ctrl-C or SIGTERM.

Starts an embedded Redis (unless a Redis URL is configured), then the gateway, a
``metadata`` worker and a ``download`` worker as child processes. A child that dies is
restarted with back-off. On Ctrl-C/SIGTERM the children stop first (a running download
pauses, its parts kept for resume), Redis last, so nothing is lost and nothing is left.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from pipeline.config import Config
from pipeline.embedded_redis import EmbeddedRedis, die_with_parent
from pipeline.stop_signals import stop_on_signals

log = logging.getLogger("nassav.up")

STOP_TIMEOUT_S = 40.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def child_argv(command: list[str], cli_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *command, *cli_args]


def run(config: Config, cli_args: list[str], gateway_args: list[str] | None = None) -> int:
    """Supervise the service until a stop signal; ``cli_args`` are passed to every child,
    ``gateway_args`` (``--processes N``) to the gateway only."""
    stop = threading.Event()
    got = stop_on_signals(stop)  # not a handler calling stop.set(): see pipeline/stop_signals.py

    config.data_path.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedRedis | None = None
    redis_url = config.redis_url
    if not redis_url:
        embedded = EmbeddedRedis(config.data_path)
        redis_url = embedded.start()
        log.info("embedded Redis up at %s (data in %s)", redis_url, embedded.dir)
    env = dict(os.environ)
    env["NASSAV_REDIS_URL"] = redis_url
    env.pop("REDIS_URL", None)

    children = [
        Child("gateway", child_argv(["serve"], [*cli_args, *(gateway_args or [])])),
        # The metadata worker also sends notifications and media-server rescans (short calls).
        Child("metadata-worker", child_argv(["worker", "--queues", "metadata", "notify"], cli_args)),
        Child("download-worker", child_argv(["worker", "--queues", "download"], cli_args)),
    ]
    try:
        for c in children:
            c.start(env)
        log.info("nassav is up: http://%s:%d  (Ctrl-C stops everything)", config.host, config.port)
        while not stop.wait(0.5):
            for c in children:
                if c.alive:
                    continue
                now = time.monotonic()
                if c.next_start == 0.0:
                    code = c.proc.returncode if c.proc else None
                    # Back-off grows with quick successive crashes, resets after a long run.
                    c.restarts = 0 if now - c.started_at > 60 else c.restarts + 1
                    delay = min(30.0, 2 ** min(c.restarts, 5) * 0.5)
                    log.error("%s exited (code %s); restarting in %.1f s", c.name, code, delay)
                    c.next_start = now + delay
                elif now >= c.next_start:
                    c.next_start = 0.0
                    c.start(env)
        return 0
    finally:
        _stop_children(children, signal.SIGINT if got and got[0] == signal.SIGINT else signal.SIGTERM)
        if embedded:
            embedded.stop()
            log.info("embedded Redis stopped")
        log.info("nassav stopped")


def _stop_children(children: list[Child], sig: int) -> None:
    for c in children:
        if c.alive:
            # A terminal Ctrl-C already reached children in our process group; one more
            # SIGTERM covers a SIGTERM sent to the supervisor alone (a second signal is safe
            # in the worker: pipeline/stop_signals.py).
            try:
                c.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for c in children:
        if c.proc is None:
            continue
        try:
            c.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", c.name, STOP_TIMEOUT_S)
            c.proc.kill()
            c.proc.wait()

