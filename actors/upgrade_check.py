"""Runs the periodic edition check (pipeline/upgrade_check.py) from a worker process."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from actors.context import Context
from actors.timer import every
from actors.stages import UPGRADE
from pipeline.avid import parse
from pipeline.editions import preference
from pipeline.submit import REFUSED, submit as submit_job
from pipeline.upgrade_check import UpgradeCheck

log = logging.getLogger("nassav.upgrade_check")


def submitter(ctx: Context, send: Callable[[str, str, str], None], first: str) -> Callable[[str], bool]:
    """``submit(code)``: an upgrade job through the one worker-side submit (claim, blocklist; a
    job that could not be sent is failed at once, so no claim outlives it). False when a job
    holds the title (the next pass sees it again) or a guard refused it (on the blocklist)."""
    def submit(code: str) -> bool:
        res = submit_job(ctx.jobs, ctx.store, parse(code), UPGRADE, lambda avid, job_id: send(first, avid, job_id))
        if res.status == REFUSED:
            log.info("upgrade check: %s", res.message)
        return res.queued
    return submit


def start(ctx: Context, send: Callable[[str, str, str], None], *, first: str, period_s: float,
          stop: threading.Event) -> threading.Thread:
    check = UpgradeCheck(ctx.redis, ctx.store, preference(ctx.config.download.editions),
                         submit=submitter(ctx, send, first))

    return every(period_s, stop, lambda: check.try_run(period_s), name="upgrade-check", log=log)
