"""The library cards' edition badge in a real headless Chromium, on `nassav up`: a title held in
the C or U edition shows a small badge (in English and in Simplified Chinese), the regular
release none."""

from __future__ import annotations

from tests.api_helpers import put_resource
from tests.e2e_helpers import Service
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tools.fixture_site import FixtureSite

pytestmark = BROWSER_MARKS


def test_cards_show_the_edition_held(tmp_path):
    site = FixtureSite.start(titles=("DEMO-001",))
    data_dir = tmp_path / "data"
    put_resource(data_dir, "EDI-001", video=True, edition="C", created_at=1000)
    put_resource(data_dir, "EDI-002", video=True, created_at=2000)
    put_resource(data_dir, "EDI-003", video=True, edition="U", created_at=3000)
    svc = Service(site.write_config(tmp_path / "config.yaml", data_dir=data_dir), data_dir)
    errors: list[str] = []
    try:
        svc.wait_ready()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                for locale, subs, uncensored in (("en-US", "CN subs", "Uncensored"), ("zh-CN", "中字", "无码")):
                    page = browser.new_context(locale=locale).new_page()
                    collect_errors(page, errors)
                    page.goto(svc.base + "/", wait_until="domcontentloaded")
                    page.wait_for_selector(".card[data-avid='EDI-003'] .badge.edition", timeout=15_000)
                    badge = lambda avid: page.eval_on_selector(  # noqa: E731
                        f".card[data-avid='{avid}'] .cover",
                        "c => [...c.querySelectorAll('.badge.edition')].filter(b => !b.hidden)"
                        ".map(b => b.textContent)")
                    assert badge("EDI-001") == [subs] and badge("EDI-003") == [uncensored]
                    assert badge("EDI-002") == []
                    page.context.close()
            finally:
                browser.close()
        assert not errors, errors
    finally:
        svc.stop()
        site.stop()
