"""Runs the periodic sweep (pipeline/sweep.py) from a worker process, and probes sources."""

from __future__ import annotations

import logging
import threading

from actors.context import Context
from actors.timer import every
from pipeline.http import HttpClient
from pipeline.source_health import SourceHealth
from pipeline.status import status_error
from pipeline.sweep import Sweeper

log = logging.getLogger("nassav.sweep")


def probe_sources(ctx: Context) -> dict[str, str]:
    """GET the home page of each source whose back-off ran out; record what it says."""
    health = SourceHealth(ctx.redis, ctx.events)
    results = {}
    for name in health.due_for_probe(n for n, _ in ctx.config.sources_by_weight()):
        cfg = ctx.config.sources[name]
        try:
            with HttpClient(ctx.config.http, site=name) as client:
                r = client.get(cfg.base_url.rstrip("/") + "/", check=False, timeout_s=15)
            # "not found" is a healthy answer (the site works), as in source_health.
            kind = status_error(r.status, is_challenge=r.is_challenge)
            outcome = kind.outcome if kind is not None else "probe ok"
            detail = f"HTTP {r.status}" + (", challenge page" if r.is_challenge else "")
        except Exception as e:
            outcome, detail = "upstream error", str(e)[:200]
        health.record(name, outcome, detail)
        results[name] = outcome
    return results


def start(ctx: Context, requeue, *, period_s: float, stop: threading.Event) -> threading.Thread:
    sweeper = Sweeper(ctx.redis, ctx.store, requeue=requeue, probe=lambda: probe_sources(ctx))

    return every(period_s, stop, lambda: sweeper.try_run(period_s), name="sweep", log=log)
