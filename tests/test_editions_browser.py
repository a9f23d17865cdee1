"""The detail view's edition in a real headless Chromium, on `nassav up` and the fixture site:
it names the edition held, and its "Look for a better edition" action upgrades the video when a
source has the subtitled release."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.e2e_helpers import Service, http
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tests.test_web_detail_browser import wait_attempt
from tools.fixture_site import FixtureSite

pytestmark = BROWSER_MARKS

AVID = "DEMO-001"


def test_detail_view_shows_the_edition_and_upgrades_it(tmp_path):
    site = FixtureSite.start(titles=(AVID,), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    svc = Service(site.write_config(tmp_path / "config.yaml", data_dir=data_dir), data_dir)
    errors: list[str] = []
    try:
        svc.wait_ready()
        assert http("POST", f"{svc.base}/api/downloads/{AVID}")[0] == 202
        wait_attempt(svc.base, AVID, "completed")
        site.add_edition(AVID, "C", ["jable"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                collect_errors(page, errors)
                page.goto(f"{svc.base}/#/{AVID}", wait_until="domcontentloaded")
                page.wait_for_selector("#detail[open] [data-action=upgrade]", timeout=15_000)
                facts = page.inner_text("#detail .detail-facts")
                assert "Edition" in facts and "Regular" in facts, facts

                page.click("#detail [data-action=upgrade]")
                page.wait_for_function("document.querySelector('#detail').innerText"
                                       ".includes('Looking for a better edition')", timeout=10_000)
                done = wait_attempt(svc.base, AVID, "completed", kind="upgrade")
                assert done["kind"] == "upgrade", done
                wait_for(lambda: "Chinese subtitles" in page.inner_text("#detail .detail-facts"), 30, 0.3,
                         "the detail view to show the new edition")
                assert http("GET", f"{svc.base}/api/resource/metadata?avid={AVID}")[1]["data"]["edition"] == "C"
                wait_for(lambda: "edition upgrade" in page.inner_text("#detail .detail-history"), 30, 0.3,
                         "the history to list the upgrade")
            finally:
                browser.close()
        assert not errors, errors
    finally:
        svc.stop()
        site.stop()
