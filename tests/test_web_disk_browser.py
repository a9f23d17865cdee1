"""The top bar says why downloads wait (a low disk, quiet hours), in English and Chinese, in a
real headless Chromium (same rules for running as ``tests/test_web_browser.py``). The disk
threshold is set above the real free space; the gateway's clock is injected."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from tests.live_server import live_gateway
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

pytestmark = BROWSER_MARKS

HEALTH = "document.querySelector('#health')"


def test_the_health_pill_names_each_reason_downloads_wait(redis_url, r, tmp_path):
    with live_gateway(tmp_path / "data", redis_url,
                      download={"min_free_gb": 10_000_000, "hours": "01:00-07:00",
                                "timezone": "Asia/Shanghai"}) as g:
        g.st.download_gate.now = lambda: datetime(2026, 3, 14, 4, 0, tzinfo=timezone.utc)  # 12:00 there
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                for locale, pattern in (
                        ("en-US", r"no workers · [\d.,]+ [KMGT]?B free · downloads wait: quiet hours until "
                                  r"01:00 \(Asia/Shanghai\) · downloads wait: [\d.,]+ [KMGT]?B free, needs [\d.,]+ [TPE]B"),
                        ("zh-CN", r"没有工作进程 · 剩余 [\d.,]+ [KMGT]?B · 下载等待中：不在下载时段，01:00（Asia/Shanghai）恢复 · "
                                  r"下载等待中：剩余 [\d.,]+ [KMGT]?B，需要 [\d.,]+ [TPE]B")):
                    ctx = browser.new_context(locale=locale)
                    errors: list[str] = []
                    page = ctx.new_page()
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    page.goto(g.base + "/", wait_until="domcontentloaded")
                    page.wait_for_function(f"{HEALTH}.textContent.includes('·')", timeout=15_000)
                    text = page.inner_text("#health")
                    assert re.fullmatch(pattern, text), text
                    assert "live-off" in page.get_attribute("#health", "class")
                    assert not errors, errors
                    ctx.close()
            finally:
                browser.close()
