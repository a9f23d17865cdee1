"""Runs the periodic edition check (pipeline/upgrade_check.py) from a worker process."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from actors.context import Context
from actors.stages import UPGRADE
from pipeline import jobs as jobstates
from pipeline.editions import preference
from pipeline.upgrade_check import UpgradeCheck

log = logging.getLogger("nassav.upgrade_check")


def submitter(ctx: Context, send: Callable[[str, str, str], None], first: str) -> Callable[[str], bool]:
    """``submit(code)``: claim and create an upgrade job, then send its first stage (a job
    that could not be sent is failed at once, so no claim outlives it)."""
    def submit(code: str) -> bool:
        res = ctx.jobs.submit(code, UPGRADE)
        if not res.accepted:
            return False  # a job holds the title: the next pass sees it again
        try:
            send(first, code, res.job_id)
        except Exception as e:
            ctx.jobs.finish(res.job_id, code, jobstates.FAILED, message=f"could not enqueue: {e}",
                            stage=jobstates.QUEUED)
            raise
        return True
    return submit


def start(ctx: Context, send: Callable[[str, str, str], None], *, first: str, period_s: float,
          stop: threading.Event) -> threading.Thread:
    check = UpgradeCheck(ctx.redis, ctx.store, preference(ctx.config.download.editions),
                         submit=submitter(ctx, send, first))

    def loop() -> None:
        while not stop.wait(period_s):
            try:
                check.try_run(period_s)
            except Exception:
                log.exception("upgrade check failed")

    t = threading.Thread(target=loop, name="upgrade-check", daemon=True)
    t.start()
    return t
