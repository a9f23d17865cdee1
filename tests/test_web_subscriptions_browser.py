"""The Subscriptions panel in a real headless Chromium: follow a search from the form, see the
check a worker made appear live (its ``subscription_checked`` event), check now, unfollow; in
Chinese the panel speaks Chinese."""

from __future__ import annotations

import pytest

from actors import following
from actors.context import Context
from actors.registry import declare
from pipeline.broker import make_broker
from pipeline.config import load
from pipeline.subscriptions import Subscriptions, subscription_id
from tests.live_server import live_gateway
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tools.fixture_site import FixtureSite

pytestmark = BROWSER_MARKS


@pytest.fixture
def world(redis_url, r, tmp_path):
    with FixtureSite.start(titles=[f"WEBS-{i:03d}" for i in range(1, 5)], stream_kind="clear",
                           duration_s=4, segment_s=2) as fx:
        with live_gateway(tmp_path / "data", redis_url) as gw:
            cfg = load(fx.write_config(tmp_path / "w.yaml", data_dir=tmp_path / "data", redis_url=redis_url), {})
            ctx = Context.create(cfg, redis_url)
            broker = make_broker(redis_url, cfg.workers)
            actors = declare(broker, cfg)
            try:
                yield gw, lambda: following.tick(ctx, actors.start)
            finally:
                broker.close()
                ctx.redis.close()


def test_follow_watch_a_check_and_unfollow(world, r):
    gw, tick = world
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 900})
            collect_errors(page, errors)
            page.goto(gw.base + "/", wait_until="domcontentloaded")
            page.wait_for_selector("#subs-panel .empty:not([hidden])", timeout=15_000)
            page.wait_for_function("document.querySelector('#live').className.includes('live-on')", timeout=15_000)
            page.select_option("#subs-panel select[name=kind]", "search")
            page.fill("#subs-panel input[name=id_or_query]", "WEBS")
            page.fill("#subs-panel input[name=backfill]", "2")
            page.click("#subs-panel button[type=submit]")
            sub_id = subscription_id("search", "WEBS")
            row = f"#subs-panel li[data-id='{sub_id}']"
            page.wait_for_selector(row, timeout=10_000)
            assert "not checked yet" in page.inner_text(row)
            assert Subscriptions(r).get(sub_id).backfill == 2

            [rec] = tick()  # a worker checks it; the page hears subscription_checked
            assert len(rec.queued) == 2
            shown = f"document.querySelector(\"{row}\").textContent.includes('pages read: 1, queued: 2')"
            page.wait_for_function(shown, timeout=10_000)

            page.click(f"{row} button:has-text('Check now')")
            page.wait_for_selector(".toast:has-text('a worker checks it shortly')", timeout=10_000)
            page.on("dialog", lambda d: d.accept())
            page.click(f"{row} button:has-text('Unfollow')")
            page.wait_for_selector(row, state="detached", timeout=10_000)
            assert Subscriptions(r).get(sub_id) is None

            zh = browser.new_page(locale="zh-CN")
            collect_errors(zh, errors)
            zh.goto(gw.base + "/", wait_until="domcontentloaded")
            zh.wait_for_selector("#subs-panel .empty:not([hidden])", timeout=15_000)
            assert zh.inner_text("#subs-title") == "订阅"
            assert zh.inner_text("#subs-panel .empty") == "还没有订阅。"
        finally:
            browser.close()
    assert not errors, errors
