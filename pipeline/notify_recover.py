"""Deliveries no worker will carry on: sent again once, then marked ``lost``.

A worker that dies between recording a delivery and sending its message (the dispatcher),
or between an attempt and sending the next one (the actor), leaves the record ``queued`` or
``retrying`` with no message anywhere; the event was already read, so nothing else brings it
back. Every worker serving the ``notify`` queue runs :func:`recover` on a timer: a record
untouched for longer than :func:`stale_after_s` is sent again once (the next attempt, origin
``recovered``); one that stalls again after that is marked ``lost`` with the reason, and a
``notify_failed`` event says so, but only while the notify queue holds no waiting message
(a long queue is a slow record, not a lost one). The claim in ``Deliveries.begin`` makes sure
the re-send and a late original never both reach the target, and a delivered record is final.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from pipeline.broker import NOTIFY_QUEUE, ready_length
from pipeline.config import NotifyConfig
from pipeline.notifier import Notifier

log = logging.getLogger("nassav.notify")

# Room for a busy notify queue on top of the back-off and one attempt.
QUEUE_GRACE_S = 120.0


def attempt_limit_s(n: NotifyConfig) -> float:
    """The longest one attempt may hold a worker thread (the notify actor's time limit)."""
    return max(60.0, n.timeout_s * 6)


def stale_after_s(n: NotifyConfig) -> float:
    """How long a queued/retrying record may sit untouched before it is deemed stuck:
    ``notify.recover_after_s``, or by default the longest back-off + one attempt's time limit
    + two minutes (300 + 60 + 120 = 480 s with the defaults)."""
    if n.recover_after_s > 0:
        return n.recover_after_s
    return n.max_backoff_s + attempt_limit_s(n) + QUEUE_GRACE_S


def check_period_s(n: NotifyConfig) -> float:
    """How often a worker looks: a quarter of the bound, between 0.5 s and a minute."""
    return min(60.0, max(0.5, stale_after_s(n) / 4))


@dataclass(frozen=True)
class Recovered:
    resent: list[str]
    lost: list[str]


def recover(notifier: Notifier, resend: Callable[[str, int], None], *, now: float | None = None) -> Recovered:
    """Send each stuck delivery again once (``resend(delivery_id, attempt)``), mark the ones
    stuck after that ``lost``; what was done."""
    n = notifier.config.notify
    bound = stale_after_s(n)
    now = time.time() if now is None else now
    d = notifier.deliveries
    ids = d.waiting_ids()
    if not ids:
        return Recovered([], [])
    may_lose = ready_length(notifier.client, NOTIFY_QUEUE) == 0
    reason = (f"no worker sent it within {bound:g} s, even after it was sent again "
              f"(a worker died while it was queued?)")
    resent, lost = [], []
    for did in ids:
        got = d.recover(did, now=now, stale_after_s=bound, may_lose=may_lose, reason=reason)
        if got > 0:
            resend(did, got)
            resent.append(did)
            log.warning("notify: delivery %s untouched for %.0f s or more; sent again (attempt %d)", did, bound, got)
        elif got < 0:
            lost.append(did)
            rec = d.get(did) or {"id": did}
            log.error("notify: delivery %s lost: %s", did, reason)
            notifier.report_failed(rec, int(rec.get("attempts") or 0),
                                   f"notification to {rec.get('target', '?')} lost: {reason}")
    return Recovered(resent, lost)
