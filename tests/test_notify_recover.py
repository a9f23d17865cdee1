"""Deliveries a dead worker left ``queued`` or ``retrying``, on the real Redis: sent again once
(never twice, never a delivered one), then marked ``lost`` with the reason; and a real
``nassav worker`` SIGKILLed between recording a delivery and sending it, whose delivery a
second worker then makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pipeline import deliveries as dv, notify_recover as recovery
from pipeline.broker import NOTIFY_QUEUE, make_broker, ready_length
from pipeline.config import NotifyConfig, load
from pipeline.events import Events
from pipeline.notifier import NOTIFY_FAILED, Notifier
from tests.api_helpers import gateway
from tests.conftest import ROOT, stop_group, wait_for
from tests.notify_receivers import Receiver
from tests.test_notify import SECRET, cfg, completed, hook


def _later(n: Notifier, by: float = 1.0) -> float:
    """A moment ``by`` seconds past the stale bound: what a timer would see that much later."""
    return time.time() + recovery.stale_after_s(n.config.notify) + by


def test_the_bound_comes_from_the_retry_policy():
    assert recovery.stale_after_s(NotifyConfig()) == 300 + 60 + 120
    assert recovery.stale_after_s(NotifyConfig(max_backoff_s=30, timeout_s=20)) == 30 + 120 + 120
    assert recovery.stale_after_s(NotifyConfig(recover_after_s=7)) == 7
    assert recovery.check_period_s(NotifyConfig()) == 60
    assert recovery.check_period_s(NotifyConfig(recover_after_s=1)) == 0.5


def test_a_bad_bound_is_refused_naming_the_form(tmp_path):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load(None, {}, data_dir=str(tmp_path), notify={"recover_after_s": 0.2})
    assert "notify.recover_after_s" in str(e.value) and "seconds from 1 to 86400" in str(e.value)


def test_a_delivery_recorded_without_its_message_is_sent_once(tmp_path, r, redis_url):
    with Receiver(secret=SECRET) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url)]), r)
        [did] = n.dispatch(completed(r))  # recorded; the worker "dies" before sending
        sent: list[tuple[str, int]] = []
        resend = lambda d, a: sent.append((d, a))  # noqa: E731
        assert recovery.recover(n, resend) == recovery.Recovered([], [])  # not stale yet: untouched
        got = recovery.recover(n, resend, now=_later(n))
        assert got.resent == [did] and sent == [(did, 1)]
        assert recovery.recover(n, resend, now=_later(n)) == recovery.Recovered([], [])  # same moment: once
        assert n.deliver(did, 1, dv.RECOVERED_ORIGIN).status == "delivered"
        # The original message turning up late sends nothing: attempt 1 is done.
        assert n.deliver(did, 1).status == "skipped"
        # A delivered record is never sent again, however old.
        assert recovery.recover(n, resend, now=_later(n, 3600)) == recovery.Recovered([], [])
        assert len(rx.requests) == 1 and sent == [(did, 1)]
    rec = dv.decode(n.deliveries.get(did))
    assert rec["status"] == "delivered" and rec["attempts"] == 1 and rec["recovered"] is not None


def test_the_original_and_its_resend_never_both_send(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=1) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url)], max_attempts=3), r)
        [did] = n.dispatch(completed(r))
        resent: list[int] = []
        recovery.recover(n, lambda d, a: resent.append(a), now=_later(n))
        assert resent == [1]
        # The original message (a long queue, not a dead worker) runs first: it holds attempt 1.
        assert n.deliver(did, 1).status == "retrying"
        assert n.deliver(did, 1, dv.RECOVERED_ORIGIN).status == "skipped"
        assert n.deliver(did, 2).status == "delivered"
        assert len(rx.requests) == 2
    # The same message handed out again (dramatiq redelivering a dead worker's) may go on.
    n2 = Notifier(cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/")]), r)
    [d2] = n2.dispatch(completed(r, "ABC-124"))
    assert n2.deliveries.begin(d2, 1, "") and n2.deliveries.begin(d2, 1, "")
    assert not n2.deliveries.begin(d2, 1, dv.RECOVERED_ORIGIN)
    assert n2.deliveries.begin(d2, 2, dv.RECOVERED_ORIGIN)


def test_an_attempt_that_died_mid_send_is_followed_by_the_next(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=1) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url)], max_attempts=5), r)
        [did] = n.dispatch(completed(r))
        assert n.deliver(did, 1).status == "retrying"
        assert n.deliveries.begin(did, 2, "")  # attempt 2 starts... and its worker is killed
        resent: list[int] = []
        recovery.recover(n, lambda d, a: resent.append(a), now=_later(n))
        assert resent == [3]
        assert n.deliver(did, 3, dv.RECOVERED_ORIGIN).status == "delivered"
    assert dv.decode(n.deliveries.get(did))["attempts"] == 3


def test_stuck_again_after_the_resend_is_lost_with_a_reason(tmp_path, r, redis_url):
    n = Notifier(cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/")]), r)
    [did] = n.dispatch(completed(r))
    resent: list[str] = []
    first = _later(n)
    assert recovery.recover(n, lambda d, a: resent.append(d), now=first).resent == [did]
    # Still untouched a whole bound after that re-send:
    again = first + recovery.stale_after_s(n.config.notify) + 1

    # A message waits in the notify queue: the record may just be slow, so it is not lost yet.
    broker = make_broker(redis_url, n.config.workers)
    try:
        from actors.notify import declare

        declare(broker, n.config).send("someone-else", 1)
        assert ready_length(r, NOTIFY_QUEUE) == 1
        assert recovery.recover(n, resent.append, now=again) == recovery.Recovered([], [])
        r.delete(f"nassav-dramatiq:{NOTIFY_QUEUE}")  # the queue drains; still nothing took it
        got = recovery.recover(n, resent.append, now=again + 1)
    finally:
        broker.close()
    assert got.lost == [did] and resent == [did]
    rec = dv.decode(n.deliveries.get(did))
    assert rec["status"] == "lost" and "even after it was sent again" in rec["last_error"]
    assert n.deliver(did, 2, dv.RECOVERED_ORIGIN).status == "skipped"  # lost is final
    [failed] = [e for e in Events(r).after("0") if e.type == NOTIFY_FAILED]
    assert failed.data["delivery_id"] == did and "lost" in failed.data["message"]

    with gateway(tmp_path / "data", redis_url, notify={"targets": [hook("http://127.0.0.1:9/")]}) as c:
        got = c.get("/api/notifications/deliveries?status=lost").json()["data"]
        assert [d["id"] for d in got] == [did] and "claim" not in got[0]


def _worker(conf, redis_url, log, *, die_before_send=False):
    """``nassav worker --queues notify``; ``die_before_send``: the process SIGKILLs itself
    where the dispatcher, having recorded a delivery, would send its message."""
    argv = ["worker", "--queues", "notify", "--config", str(conf)]
    code = ("import os, signal, sys\n"
            "from pipeline import notify_dispatch\n"
            "init = notify_dispatch.Dispatcher.__init__\n"
            "def dying(*a, **k):\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "def patched(self, client, notifier, send, **kw):\n"
            "    init(self, client, notifier, dying, **kw)\n"
            "notify_dispatch.Dispatcher.__init__ = patched\n"
            "from gateway.cli.main import main\n"
            f"sys.exit(main({argv!r}))\n")
    cmd = [sys.executable, "-c", code] if die_before_send else [sys.executable, "-m", "gateway.cli", *argv]
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, NASSAV_REDIS_URL=redis_url), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_a_worker_killed_before_sending_leaves_a_delivery_the_next_worker_makes(tmp_path, r, redis_url):
    with Receiver(secret=SECRET) as rx:
        notify = {"min_backoff_s": 0.2, "max_backoff_s": 0.5, "recover_after_s": 2,
                  "targets": [{"name": "hook", "url": rx.url, "secret": SECRET, "events": ["task_completed"]}]}
        conf = tmp_path / "c.yaml"
        conf.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "redis_url": redis_url,
                                        "notify": notify, "workers": {"sweep_interval_s": 0}}))
        logf = open(tmp_path / "worker.log", "wb")
        victim = _worker(conf, redis_url, logf, die_before_send=True)
        survivor = None
        try:
            wait_for(lambda: r.exists("nassav:events") and r.xinfo_groups("nassav:events"), 30, 0.1,
                     "the first worker's dispatcher")
            e = completed(r)
            did = dv.delivery_id(e.id, "hook")
            victim.wait(30)
            assert victim.returncode == -signal.SIGKILL, (tmp_path / "worker.log").read_text()
            assert r.hget(dv.key(did), "status") == "queued" and rx.requests == []

            survivor = _worker(conf, redis_url, logf)
            wait_for(lambda: r.hget(dv.key(did), "status") == "delivered", 60, 0.1,
                     f"the second worker to make the delivery ({tmp_path / 'worker.log'})")
            time.sleep(3)  # more than the bound again: a second send would show by now
        finally:
            stop_group(victim, signal.SIGKILL)
            if survivor is not None:
                stop_group(survivor)
            logf.close()
        assert len(rx.requests) == 1 and rx.requests[0].signature_ok
        assert rx.requests[0].json()["delivery_id"] == did
    rec = dv.decode(r.hgetall(dv.key(did)))
    assert rec["attempts"] == 1 and rec["recovered"] is not None
    assert "sent again (attempt 1)" in (tmp_path / "worker.log").read_text()
