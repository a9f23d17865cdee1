"""The detail view's history, retry and blocklist in a real headless Chromium, on `nassav up`
and the fixture site.

A download fails (every segment answers 500, no retries): the detail view shows the job's
stages with the source each asked, and a Retry button; the retry (from the download stage)
completes. A source is blocked for the title from its row in the history and lifted again;
the whole title is blocked and unblocked; each change is in the API's blocklist."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.e2e_helpers import Service, http
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tools.fixture_site import FixtureSite

pytestmark = BROWSER_MARKS

AVID = "DEMO-001"


def blocklist(base: str) -> list[tuple[str, str, str]]:
    code, body = http("GET", f"{base}/api/blocklist")
    assert code == 200, body
    return [(e["avid"], e["source"], e["reason"]) for e in body["data"]["items"]]


def test_history_retry_and_blocklist_in_the_detail_view(tmp_path):
    site = FixtureSite.start(titles=(AVID,), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir,
                            extra={"download": {"max_retries": 0, "segment_retries": 0}})
    svc = Service(cfg, data_dir)
    errors: list[str] = []
    try:
        svc.wait_ready()
        site.set_faults(error_rate=1.0)
        code, body = http("POST", f"{svc.base}/api/downloads/{AVID}")
        assert code == 202, body

        def failed():
            code, body = http("GET", f"{svc.base}/api/resource/{AVID}/history")
            items = body.get("data") or [] if code == 200 else []
            return items and items[0]["status"] == "failed" and any(
                s["stage"] == "download" and s["outcome"] == "failed" for s in items[0]["stages"])
        wait_for(failed, 90, 0.3, "the failed download in the history")
        site.reset()
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1280, "height": 900})
            try:
                page = ctx.new_page()
                collect_errors(page, errors)
                page.goto(f"{svc.base}/#/{AVID}", wait_until="domcontentloaded")
                page.wait_for_selector("#detail[open] .attempt.failed .attempt-stages", timeout=15_000)
                stages = page.inner_text("#detail .attempt.failed .attempt-stages")
                assert "resolve" in stages and "found" in stages and "download" in stages, stages
                found = page.inner_text("#detail .attempt.failed .stage-row.found .source-outcome.found .name")

                # Retry from the failed stage: the job completes and the player appears.
                page.wait_for_selector("#detail [data-action=retry]", timeout=10_000)
                assert "download" in page.inner_text("#detail [data-action=retry]")
                page.click("#detail [data-action=retry]")
                page.wait_for_selector("#detail video", timeout=90_000)
                page.wait_for_selector("#detail .attempt.completed .attempt-stages", timeout=15_000)
                done = page.inner_text("#detail .attempt.completed")
                assert "retry of" in done and "download" in done, done
                assert not page.locator("#detail [data-action=retry]").count()

                # Block the source that had the title, from its row; then use it again.
                page.once("dialog", lambda d: d.accept("broken copy"))
                page.click("#detail .attempt.failed .source-outcome.found button")
                page.wait_for_selector(f'#detail .detail-blocklist .block-row[data-source="{found}"]', timeout=10_000)
                assert blocklist(svc.base) == [(AVID, found, "broken copy")]
                assert "broken copy" in page.inner_text("#detail .detail-blocklist")
                page.click(f'#detail .detail-blocklist .block-row[data-source="{found}"] button')
                page.wait_for_function(
                    f"!document.querySelector('#detail .detail-blocklist .block-row[data-source=\"{found}\"]')",
                    timeout=10_000)
                assert blocklist(svc.base) == []

                # Block the whole title, then remove it from the blocklist.
                page.once("dialog", lambda d: d.accept("not wanted"))
                page.click("#detail .detail-blocklist .block-row .danger")
                page.wait_for_selector("#detail .detail-blocklist .blocked", timeout=10_000)
                assert blocklist(svc.base) == [(AVID, "", "not wanted")]
                code, body = http("POST", f"{svc.base}/api/resource/refresh/{AVID}")
                assert code == 403 and "blocklist" in body["message"]
                page.click("#detail .detail-blocklist .block-row button")
                page.wait_for_function("!document.querySelector('#detail .detail-blocklist .blocked')", timeout=10_000)
                assert blocklist(svc.base) == []
                assert not errors, errors
            finally:
                ctx.close()
    finally:
        svc.stop()
        site.stop()
