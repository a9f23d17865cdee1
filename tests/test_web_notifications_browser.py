"""The Notifications panel in a real headless Chromium, against a real gateway, a real
``nassav worker --queues notify`` and a local webhook receiver that fails once then succeeds:
the targets masked, a test sent and followed to "delivered" (after one retry), a failing
target's delivery appearing live (its ``notify_failed`` event) under the default "failed"
filter, a lost one with its reason, and the panel in Chinese."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from pipeline import deliveries as dv, notify_recover as recovery
from pipeline.config import load
from pipeline.events import Events
from pipeline.notifier import Notifier
from tests.conftest import ROOT, free_port, stop_group, wait_for
from tests.live_server import live_gateway
from tests.notify_receivers import Receiver
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright

pytestmark = BROWSER_MARKS

SECRET = "browser-hmac-key"


@pytest.fixture
def world(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=1) as rx:
        notify = {"min_backoff_s": 0.5, "max_backoff_s": 1, "max_attempts": 2,
                  "targets": [{"name": "hook", "url": rx.url + "/in/TOKENPATH", "secret": SECRET,
                               "events": ["disk_low"]},
                              {"name": "dead", "url": f"http://127.0.0.1:{free_port()}/", "events": ["task_completed"]}]}
        data = tmp_path / "data"
        conf = tmp_path / "c.yaml"
        conf.write_text(yaml.safe_dump({"data_dir": str(data), "redis_url": redis_url, "notify": notify,
                                        "workers": {"sweep_interval_s": 0}}))
        log = open(tmp_path / "worker.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "--queues", "notify",
                                   "--config", str(conf)], cwd=ROOT,
                                  env=dict(os.environ, NASSAV_REDIS_URL=redis_url),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def up():
                if worker.poll() is not None:
                    raise AssertionError((tmp_path / "worker.log").read_text())
                return r.exists("nassav:events") and r.xinfo_groups("nassav:events")
            wait_for(up, 30, 0.1, "the worker's notify dispatcher")
            with live_gateway(data, redis_url, notify=notify) as gw:
                yield gw, rx, load(conf, {})
        finally:
            stop_group(worker)
            log.close()


def test_targets_a_test_live_failures_and_a_lost_delivery(world, r):
    gw, rx, cfg = world
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 1000})
            collect_errors(page, errors)
            page.goto(gw.base + "/", wait_until="domcontentloaded")
            hook = "#notify-panel li[data-target=hook]"
            page.wait_for_selector(hook, timeout=15_000)
            page.wait_for_function("document.querySelector('#live').className.includes('live-on')", timeout=15_000)
            panel_text = page.inner_text("#notify-panel")
            assert f"{rx.url}/…" in page.inner_text(hook) and "TOKENPATH" not in panel_text
            assert "No failed delivery." in page.inner_text("#notify-panel .notify-empty")

            # A test: the receiver answers 500 first, the retry gets through.
            page.click(f"{hook} button.notify-test")
            page.wait_for_selector(f"{hook} .notify-test-result.delivered", timeout=30_000)
            assert "test: delivered · HTTP 200" in page.inner_text(f"{hook} .notify-test-result")
            assert len(rx.requests) == 2 and all(q.signature_ok for q in rx.requests)
            assert rx.requests[-1].json()["event"] == "notify_test"

            # The dead target fails both attempts; its notify_failed event brings it in live.
            Events(r).emit("task_completed", avid="ABC-123", job_id="j1", stage="download",
                           data={"status": "completed", "message": "ABC-123 done"})
            row = "#notify-panel li[data-status=failed]"
            page.wait_for_selector(row, timeout=30_000)
            text = page.inner_text(row)
            assert "dead" in text and "task_completed · ABC-123" in text and "attempts: 2" in text
            assert "no answer from http://127.0.0.1" in text

            # A delivery no worker ever sent: sent again once, then lost; the panel says why.
            n = Notifier(cfg, r)
            n.deliveries.create("0-1.hook", target="hook", kind="webhook", event="task_completed",
                                event_id="0-1", avid="ABC-999", payload={})
            bound = recovery.stale_after_s(cfg.notify)
            first = time.time() + bound + 1
            recovery.recover(n, lambda d, a: None, now=first)  # its re-send "dies" too
            assert recovery.recover(n, lambda d, a: None, now=first + bound + 1).lost == ["0-1.hook"]
            page.select_option("#notify-panel select.notify-filter", "lost")
            lost = "#notify-panel li[data-id='0-1.hook']"
            page.wait_for_selector(lost, timeout=10_000)
            assert "even after it was sent again" in page.inner_text(lost)
            assert "sent again after a stall" in page.inner_text(f"{lost} .notify-facts")
            assert page.inner_text(f"{lost} .notify-status") == "lost"

            page.select_option("#notify-panel select.notify-filter", "delivered")
            page.wait_for_selector("#notify-panel li[data-status=delivered]", timeout=10_000)
            got = page.inner_text("#notify-panel .notify-deliveries")
            assert "hook" in got and "notify_test" in got and "attempts: 2 · HTTP 200" in got
            # Refresh reads again: a record made meanwhile shows up without an event.
            n.deliveries.create("0-2.hook", target="hook", kind="webhook", event="disk_low",
                                event_id="0-2", avid="", payload={})
            n.deliveries.attempted("0-2.hook", attempts=1, status=dv.DELIVERED, http_status=204)
            page.click("#notify-panel button.notify-refresh")
            page.wait_for_selector("#notify-panel li[data-id='0-2.hook']", timeout=10_000)

            zh = browser.new_page(locale="zh-CN")
            collect_errors(zh, errors)
            zh.goto(gw.base + "/", wait_until="domcontentloaded")
            zh.wait_for_selector("#notify-panel li[data-target=hook]", timeout=15_000)
            assert zh.inner_text("#notify-title") == "通知"
            assert zh.inner_text("#notify-panel li[data-target=hook] button.notify-test") == "发送测试"
            zh.wait_for_selector("#notify-panel li[data-status=failed]", timeout=10_000)
            assert "失败" in zh.inner_text("#notify-panel li[data-status=failed] .notify-status")
        finally:
            browser.close()
    assert not errors, errors
