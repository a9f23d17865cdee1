"""Runs subscription checks from a worker process: wires the catalogue listings, the genre
lookup and the submit path into ``pipeline/subscription_check.py`` and ticks it on a timer.

Every worker ticks; a per-subscription Redis lock and the due time decide which one checks
(``run_due``). Requests go through the catalogue adapters built with the context's
``RedisPacer``, so listings and title pages keep each catalogue's interval across workers.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from actors.context import Context
from actors.timer import every
from pipeline.avid import parse
from pipeline.errors import SourceError, SourceNotFound
from pipeline.subscription_check import CheckRecord, Reader, check, run_due
from pipeline.submit import submit as submit_job
from pipeline.subscriptions import Subscription, Subscriptions
from sources.listing import CatalogueListing, ListingPage
from sources.registry import scrape_any

log = logging.getLogger("nassav.subscriptions")


def listings(ctx: Context) -> list[CatalogueListing]:
    """The active catalogues, best first, as listing readers (shared pacing)."""
    return [CatalogueListing(cfg, ctx.config.http, pacer=ctx.pacer, name=name)
            for name, cfg in ctx.config.catalogues_by_weight()]


def reader(ctx: Context, sub: Subscription, sites: list[CatalogueListing]) -> Reader:
    """Listing pages from the first catalogue that answers (mirrors share one inventory: a
    "not found" is the answer, a block or an error asks the next mirror)."""
    made = [0]  # site requests asked so far (a mirror tried counts)

    def page(n: int) -> ListingPage:
        errors: list[SourceError] = []
        for site in sites:
            made[0] += 1
            try:
                return site.listing(sub.kind, sub.key, n)
            except SourceNotFound:
                raise
            except SourceError as e:
                errors.append(e)
        if not errors:
            raise SourceNotFound("catalogues", detail="no catalogue is enabled")
        raise errors[0]

    def genres(avid: str) -> list[str]:
        entry, warnings = scrape_any(parse(avid), sites)
        made[0] += len(warnings) + (entry is not None)
        if entry is None:
            raise warnings[0] if warnings else SourceNotFound("catalogues", avid, "no catalogue is enabled")
        return entry.genres

    return Reader(page=page, genres=genres, requests=lambda: made[0])


def check_one(ctx: Context, subs: Subscriptions, sub: Subscription,
              start: Callable[[str, str], None]) -> CheckRecord:
    """One check of ``sub`` now (the caller holds its lock)."""
    sites = listings(ctx)
    try:
        return check(sub, subs, reader(ctx, sub, sites),
                     lambda avid, kind, fields: submit_job(ctx.jobs, ctx.store, parse(avid), kind, start, fields),
                     events=ctx.events, max_pages=ctx.config.subscriptions.max_pages,
                     backfill=ctx.config.subscriptions.backfill, keep=ctx.config.subscriptions.checks_kept,
                     worker=ctx.worker_id)
    finally:
        for s in sites:
            s.close()


def lock_ttl_ms(ctx: Context) -> int:
    """Long enough for the longest check: every page slow on every mirror, plus a minute."""
    c = ctx.config
    per_page = c.http.timeout_s * (c.http.retries + 1) + max(
        (s.min_interval_s for _, s in c.catalogues_by_weight()), default=0)
    return int((c.subscriptions.max_pages * per_page + 60) * 1000)


def tick(ctx: Context, start: Callable[[str, str], None], now: float | None = None) -> list[CheckRecord]:
    """Check every due subscription this worker can lock."""
    s = ctx.config.subscriptions
    subs = Subscriptions(ctx.redis)
    return run_due(subs, lambda sub: check_one(ctx, subs, sub, start), interval_s=s.interval_s,
                   jitter=s.jitter, lock_ttl_ms=lock_ttl_ms(ctx), now=now)


def start(ctx: Context, start_job: Callable[[str, str], None], *, stop: threading.Event) -> threading.Thread:
    """Tick every ``subscriptions.tick_s`` in a daemon thread until ``stop`` is set."""
    return every(ctx.config.subscriptions.tick_s, stop, lambda: tick(ctx, start_job), name="subscriptions",
                 log=log)
