"""``nassav worker``: one process running Dramatiq workers for some queues.

We drive ``dramatiq.Worker`` ourselves rather than through the ``dramatiq`` CLI so the
config is passed in explicitly and a stop is clean: on SIGTERM/SIGINT a running download
stops at once (its parts stay for resume) and its stage is sent again; metadata stages,
which are short, finish.
"""

from __future__ import annotations

import logging
import threading

import dramatiq

from actors import following, notify as notify_actors, sweeping, upgrade_check
from actors.context import Context
from actors.registry import declare
from pipeline import logs
from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE, NOTIFY_QUEUE, QUEUES, make_broker
from pipeline.config import Config
from pipeline.worker_registry import WorkerRegistry
from pipeline.redis_client import redact
from pipeline.stop_signals import stop_on_signals

log = logging.getLogger("nassav.worker")


def run(config: Config, redis_url: str, queues: list[str], threads: int | None = None) -> int:
    unknown = set(queues) - set(QUEUES) - {NOTIFY_QUEUE}
    if unknown:
        raise SystemExit(f"unknown queue(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join((*QUEUES, NOTIFY_QUEUE))}")
    name = "worker-" + "-".join(queues)
    logs.setup(name, data_dir=config.data_path, level=config.log_level, json_lines=config.log_json)
    if threads is None:
        threads = config.workers.download_threads if queues == [DOWNLOAD_QUEUE] else config.workers.metadata_threads

    broker = make_broker(redis_url, config.workers)
    ctx = Context.create(config, redis_url)
    actors = declare(broker, config, lambda: ctx)
    notify_actor = notify_actors.declare(broker, config, lambda: ctx)
    # Publishes this process for /api/workers and keeps dramatiq's heartbeat fresh while
    # every thread is busy on a long download (its consumers only beat when they fetch).
    broker.add_middleware(WorkerRegistry(ctx.redis, queues=queues, threads=threads))
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=threads,
                             worker_timeout=config.workers.worker_timeout_ms)
    # A download worker must not hoard download messages that an idle peer could take.
    worker.queue_prefetch = threads if DOWNLOAD_QUEUE in queues else threads * 2

    stop = threading.Event()
    stop_on_signals(stop)  # not a handler calling stop.set(): see pipeline/stop_signals.py
    worker.start()
    if config.workers.sweep_interval_s > 0:
        sweeping.start(ctx, actors.send, period_s=config.workers.sweep_interval_s, stop=stop)
    if config.subscriptions.tick_s > 0 and METADATA_QUEUE in queues:
        following.start(ctx, actors.start, stop=stop)  # checks due subscriptions (one worker each)
    if NOTIFY_QUEUE in queues:
        notify_actors.start_dispatcher(ctx, notify_actor, stop)
    if config.download.upgrade_check_interval_s > 0:  # off by default
        upgrade_check.start(ctx, actors.send, first=actors.first,
                            period_s=config.download.upgrade_check_interval_s, stop=stop)
    log.info("worker up: queues=%s threads=%d redis=%s", ",".join(queues), threads, _safe(redis_url))
    while not stop.wait(1.0):
        pass
    log.info("stopping: finishing metadata stages, pausing downloads for resume")
    ctx.shutdown.set()
    worker.stop(timeout=30_000)
    broker.close()
    log.info("worker stopped")
    return 0


def _safe(url: str) -> str:
    """The Redis URL without its passwords (a Sentinel URL's too)."""
    return redact(url)
