"""``gateway.processes: N`` (``nassav serve --processes N``): N gateway processes on one port.

Each child is a whole gateway (``create_app`` under ``gateway/serve.py``'s uvicorn settings,
its own lifespan: Redis pools, relay, index keeper or reader) bound to the port with
SO_REUSEPORT, so the Linux kernel spreads new connections over the children. uvicorn's own
``workers=`` manager was not used: this way every child runs exactly the lifespan that
``nassav serve`` runs, and this module restarts one that dies.

The parent only supervises: a child that exits is restarted with back-off; SIGTERM or Ctrl-C
stops every child (SIGTERM, then SIGKILL after the graceful time) before the parent exits;
children get SIGTERM if the parent is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from pipeline.config import Config
from pipeline.stop_signals import stop_on_signals

log = logging.getLogger("nassav.gateway")

STOP_TIMEOUT_S = 20.0


def reuseport_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening socket on ``host:port`` that other processes of ours may bind too."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("gateway.processes > 1 needs SO_REUSEPORT (Linux); set gateway.processes: 1")
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _child(config: Config, redis_url: str, number: int) -> None:
    """One gateway process (the target of a spawned child)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.serve import uvicorn_config
    from pipeline import logs
    from pipeline.embedded_redis import die_with_parent

    die_with_parent()
    logs.setup("gateway", data_dir=config.data_path, level=config.log_level, json_lines=config.log_json)
    sock = reuseport_socket(config.host, config.port)
    server = uvicorn.Server(uvicorn_config(create_app(config, redis_url, freeze_gc=True), config))
    log.info("gateway process %d (pid %d) listening on http://%s:%d", number, os.getpid(),
             config.host, config.port)
    server.run(sockets=[sock])


class _Slot:
    """One child's place: its process, and when to restart it after a crash."""

    def __init__(self, number: int):
        self.number = number
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.next_start = 0.0


def serve_many(config: Config, redis_url: str) -> int:
    """Run ``config.gateway.processes`` gateway processes on the port until SIGTERM/Ctrl-C."""
    n = config.gateway.processes
    # Fails here, with one clear message, when the port is taken or SO_REUSEPORT is missing.
    reuseport_socket(config.host, config.port).close()
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop or threads
    stop = threading.Event()
    stop_on_signals(stop)  # not a handler calling stop.set(): see pipeline/stop_signals.py
    slots = [_Slot(i) for i in range(n)]

    def start(slot: _Slot) -> None:
        slot.proc = ctx.Process(target=_child, args=(config, redis_url, slot.number),
                                name=f"nassav-gateway-{slot.number}")
        slot.proc.start()
        slot.started_at = time.monotonic()
        log.info("started gateway process %d (pid %d)", slot.number, slot.proc.pid)

    try:
        for s in slots:
            start(s)
        log.info("gateway: %d processes on http://%s:%d", n, config.host, config.port)
        while not stop.wait(0.5):
            for s in slots:
                if s.proc.is_alive():
                    continue
                now = time.monotonic()
                if s.next_start == 0.0:
                    s.restarts = 0 if now - s.started_at > 60 else s.restarts + 1
                    delay = min(30.0, 2 ** min(s.restarts, 5) * 0.5)
                    log.error("gateway process %d exited (code %s); restarting in %.1f s",
                              s.number, s.proc.exitcode, delay)
                    s.next_start = now + delay
                elif now >= s.next_start:
                    s.next_start = 0.0
                    start(s)
        return 0
    finally:
        _stop(slots)
        log.info("gateway stopped")


def _stop(slots: list[_Slot]) -> None:
    for s in slots:
        if s.proc is not None and s.proc.is_alive():
            try:
                os.kill(s.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for s in slots:
        if s.proc is None:
            continue
        s.proc.join(max(0.1, deadline - time.monotonic()))
        if s.proc.is_alive():
            log.warning("gateway process %d did not stop within %.0f s; killing it", s.number, STOP_TIMEOUT_S)
            s.proc.kill()
            s.proc.join()
