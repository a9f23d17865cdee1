"""The Subscriptions panel in a real headless Chromium: follow a search from the form with every
filter and setting the API accepts (a refused one shows the API's message beside its field), see
the subscription's filters and the check a worker made appear live (its ``subscription_checked``
event) with its record, check now, unfollow; in Chinese the panel speaks Chinese."""

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
            form = "#subs-panel form"
            page.select_option(f"{form} select[name=kind]", "search")
            page.fill(f"{form} input[name=id_or_query]", "WEBS")
            page.select_option(f"{form} select[name=action]", "download")
            page.fill(f"{form} input[name=backfill]", "2")
            page.fill(f"{form} input[name=since]", "2000-01-01")
            page.click(f"{form} details.subs-more summary")
            page.fill(f"{form} input[name=name]", "web search")
            page.fill(f"{form} input[name=interval_min]", "0.5")  # 30 s: under the API's minimum
            page.fill(f"{form} input[name=skip_genres]", "GenreX, GenreY")
            page.check(f"{form} input[name=edition][value=C]")
            page.check(f"{form} input[name=edition][value=regular]")
            page.fill(f"{form} input[name=title_regex]", "(")
            sub_id = subscription_id("search", "WEBS")

            def refused(field, words):
                """Submit; the API's 400 shows beside ``field`` and nothing is followed."""
                page.click(f"{form} button[type=submit]")
                err = f"{form} [data-field='{field}'] .field-error:not([hidden])"
                page.wait_for_selector(err, timeout=10_000)
                assert words in page.inner_text(err)
                assert page.get_attribute(f"{form} [data-field='{field}']", "class").endswith("invalid")
                assert Subscriptions(r).get(sub_id) is None
            refused("interval_s", "interval_s must be seconds from 60 to 2592000")
            assert "here in minutes: 1 to 43200" in page.inner_text(f"{form} [data-field='interval_s'] .field-error")
            page.fill(f"{form} input[name=interval_min]", "90")
            refused("filters.title_regex", "filters.title_regex must be a valid regular expression")
            assert page.is_hidden(f"{form} [data-field='interval_s'] .field-error")  # fixed: its message gone
            page.fill(f"{form} input[name=title_regex]", ".")

            page.click(f"{form} button[type=submit]")
            row = f"#subs-panel li[data-id='{sub_id}']"
            page.wait_for_selector(row, timeout=10_000)
            assert "not checked yet" in page.inner_text(row)
            sub = Subscriptions(r).get(sub_id)
            assert (sub.action, sub.backfill, sub.interval_s, sub.name) == ("download", 2, 5400.0, "web search")
            assert (sub.filters.since, sub.filters.skip_genres, sub.filters.editions, sub.filters.title_regex) \
                == ("2000-01-01", ("GenreX", "GenreY"), ("C", "regular"), ".")
            assert page.inner_text(f"{row} .subs-filters") == ("since 2000-01-01 · skip: GenreX, GenreY · "
                                                              "editions: C, regular · title ~ /./ · "
                                                              "backfill 2 · every 90 min")
            assert page.input_value(f"{form} input[name=title_regex]") == ""  # the form is cleared

            [rec] = tick()  # a worker checks it; the page hears subscription_checked
            assert len(rec.queued) == 2
            shown = f"document.querySelector(\"{row}\").textContent.includes('pages read: 1, queued: 2')"
            page.wait_for_function(shown, timeout=10_000)
            page.click(f"{row} details.subs-checks summary")  # its last checks, from GET /api/subscriptions/{id}
            records = f"{row} .subs-records li"
            page.wait_for_selector(records, timeout=10_000)
            assert page.locator(records).count() == 1
            line = page.inner_text(records)
            assert f"{len(rec.new)} new, 2 queued" in line and "first check: backfill of 2 reached" in line
            tick_again = Subscriptions(r).check_now(sub_id) and tick()  # a second check: the open list grows
            assert len(tick_again) == 1
            page.wait_for_function(f"document.querySelectorAll(\"{records}\").length === 2", timeout=10_000)

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
            assert zh.inner_text("#subs-panel details.subs-more summary") == "更多筛选条件"
            assert "中文字幕" in zh.text_content("#subs-panel .subs-editions")  # inside the closed details
        finally:
            browser.close()
    # Chromium logs each refused request (the two 400s above, on purpose) as a console error.
    refusals = [e for e in errors if "status of 400 (Bad Request)" in e]
    assert len(refusals) == 2 and len(errors) == 2, errors
