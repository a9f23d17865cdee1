"""The ``notify`` actor and its dispatcher thread, in the workers that serve the ``notify`` queue.

The dispatcher (``pipeline/notify_dispatch.py``) turns events into delivery records and sends
one ``notify(delivery_id, attempt)`` message each. The actor makes one attempt; a failed one
is sent again, delayed by the back-off, with the next attempt number, until
``notify.max_attempts``. Dramatiq's own retries stay off (``max_retries=0``): the attempt count
is in the message, so the record says exactly how many tries were made. A stage never waits
on any of this: it only appends its event. A timer beside the dispatcher re-sends, once, a
delivery a dead worker left queued or retrying (``pipeline/notify_recover.py``).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import dramatiq

from actors.context import Context
from actors.timer import every
from pipeline import deliveries as dv, notify_recover as recovery, notify_send as send
from pipeline.broker import NOTIFY_QUEUE
from pipeline.config import Config
from pipeline.notifier import Notifier
from pipeline.notify_dispatch import Dispatcher

log = logging.getLogger("nassav.notify")


def declare(broker: dramatiq.Broker, config: Config,
            context: Callable[[], Context] | None = None) -> dramatiq.Actor:
    """Declare the ``notify`` actor on ``broker`` (its queue too)."""
    made: list[Notifier] = []  # one per process, built where the actor first runs

    def notify(delivery_id: str, attempt: int = 1, origin: str = "") -> None:
        if context is None:
            raise RuntimeError("this process only sends messages; run it in `nassav worker`")
        if not made:
            ctx = context()
            made.append(Notifier(ctx.config, ctx.redis, store=ctx.store, events=ctx.events))
        outcome = made[0].deliver(delivery_id, attempt, origin)
        if outcome.retry_in_s is not None:
            actor.send_with_options(args=(delivery_id, attempt + 1), delay=int(outcome.retry_in_s * 1000))

    # A slow target holds one thread at most this long (the sender's timeout is far shorter).
    time_limit_ms = int(recovery.attempt_limit_s(config.notify) * 1000)
    actor = dramatiq.actor(notify, broker=broker, actor_name="notify", queue_name=NOTIFY_QUEUE,
                           max_retries=0, time_limit=time_limit_ms)
    return actor


def start_dispatcher(ctx: Context, actor: dramatiq.Actor, stop: threading.Event) -> threading.Thread | None:
    """Run the event dispatcher in a daemon thread until ``stop``; None when nothing is configured."""
    notifier = Notifier(ctx.config, ctx.redis, store=ctx.store, events=ctx.events)
    if not notifier.configured:
        return None
    for t in notifier.targets.values():
        bad = send.unreadable_apprise_urls(t) if t.kind == "apprise" else []
        if bad:  # said at start-up, not first when an event comes
            log.error("notify target %s: Apprise cannot read URL %s; its deliveries will fail", t.name,
                      ", ".join(bad))
    dispatcher = Dispatcher(ctx.redis, notifier, lambda delivery_id: actor.send(delivery_id, 1))
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="notify-dispatch", daemon=True)
    thread.start()
    # Deliveries a dead worker left queued/retrying: sent again once, then marked lost.
    every(recovery.check_period_s(ctx.config.notify), stop,
          lambda: recovery.recover(notifier, lambda did, attempt: actor.send(did, attempt, dv.RECOVERED_ORIGIN)),
          name="notify-recover", log=log)
    log.info("notify dispatcher up: %d target(s), %d media server(s), events %s",
             len(notifier.targets), len(notifier.servers), ",".join(sorted(notifier.event_types())))
    return thread
