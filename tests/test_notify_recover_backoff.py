"""Recovery of stuck deliveries against the retry back-off, on the real Redis: a delivery
waiting for its next attempt (its message is delayed by the back-off) is not stuck, however
short ``notify.recover_after_s`` is; once that attempt is overdue by the bound, it is."""

from __future__ import annotations

import time

from pipeline import deliveries as dv, notify_recover as recovery
from pipeline.notifier import Notifier
from tests.notify_receivers import Receiver
from tests.test_notify import SECRET, cfg, completed, hook


def test_a_delivery_waiting_out_its_back_off_is_neither_resent_nor_lost(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=100) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url)], max_attempts=5, min_backoff_s=600,
                         max_backoff_s=600, recover_after_s=60), r)
        [did] = n.dispatch(completed(r))
        out = n.deliver(did, 1)
        assert out.status == "retrying" and out.retry_in_s == 600
        sent: list[tuple[str, int]] = []
        resend = lambda d, a: sent.append((d, a))  # noqa: E731
        # Two minutes on, twice: the next attempt is due in ten minutes; nothing is stuck.
        for by in (120, 300):
            assert recovery.recover(n, resend, now=time.time() + by) == recovery.Recovered([], [])
        assert sent == [] and dv.decode(n.deliveries.get(did))["status"] == "retrying"
        # The attempt due at +600 s never came (its worker died): overdue by the bound, sent again.
        got = recovery.recover(n, resend, now=time.time() + 600 + 60 + 1)
        assert got.resent == [did] and sent == [(did, 2)]
        assert len(rx.requests) == 1
