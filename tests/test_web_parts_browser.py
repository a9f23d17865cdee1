"""A title imported in two parts plays part by part in the detail view (real headless Chromium,
real tiny H.264 videos imported against the fixture site, the gateway on the real Redis)."""

from __future__ import annotations

from tests.live_server import live_gateway
from tests.test_library_videos import imported  # noqa: F401  (the fixture)
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright

pytestmark = BROWSER_MARKS

STATE = """() => { const v = document.querySelector('#detail video');
  return {src: v.currentSrc, d: v.duration, err: v.error && v.error.code,
          pressed: [...document.querySelectorAll('#detail .detail-parts button')]
                     .map(b => b.getAttribute('aria-pressed'))}; }"""


def test_the_detail_view_plays_both_parts(imported, redis_url, tmp_path):  # noqa: F811
    _, _, data, _ = imported
    errors: list[str] = []
    with live_gateway(data, redis_url) as g, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=ARGS + ["--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            collect_errors(page, errors)
            page.goto(g.base + "/#/DEMO-002", wait_until="domcontentloaded")
            page.wait_for_selector("#detail[open] video", timeout=15_000)
            assert page.locator("#detail .detail-parts button").count() == 2
            page.wait_for_function("document.querySelector('#detail video').duration > 0", timeout=15_000)
            first = page.evaluate(STATE)
            assert first["err"] is None and 1.5 < first["d"] < 2.5 and first["pressed"] == ["true", "false"], first
            assert "part=" not in first["src"]

            page.click("#detail .detail-parts button[data-part='2']")
            page.wait_for_function("document.querySelector('#detail video').currentSrc.includes('part=2')",
                                   timeout=10_000)
            page.wait_for_function("document.querySelector('#detail video').duration > 2.5", timeout=15_000)
            second = page.evaluate(STATE)
            assert second["err"] is None and second["d"] < 3.5 and second["pressed"] == ["false", "true"], second

            # Part 1 played to its end goes on to part 2 by itself.
            page.click("#detail .detail-parts button[data-part='1']")
            page.wait_for_function("!document.querySelector('#detail video').currentSrc.includes('part=')",
                                   timeout=10_000)
            page.evaluate("() => { const v = document.querySelector('#detail video'); v.muted = true; return v.play(); }")
            page.wait_for_function("document.querySelector('#detail video').currentSrc.includes('part=2')",
                                   timeout=20_000)
            assert page.evaluate(STATE)["pressed"] == ["false", "true"]
        finally:
            browser.close()
    assert not errors, errors
