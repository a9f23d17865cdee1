"""The web page in a real headless Chromium: add two AVIDs, watch progress, see the covers.

Runs Debian's ``chromium`` through Playwright (``executable_path``; Playwright's own browser
download cannot work offline). Without either, the test is skipped and says why.
Set ``NASSAV_SCREENSHOT=/some/file.png`` to keep a screenshot of the page at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e_helpers import Service
from tools.fixture_site import FixtureSite

CHROMIUM = os.environ.get("NASSAV_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

# Shared with tests/security/test_cross_origin_browser.py: one rule for when a browser test runs.
BROWSER_MARKS = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="browser test skipped: the playwright package is not installed "
                              "(it is in the [test] extras: pip install -e '.[test]')"),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"browser test skipped: no Chromium at {CHROMIUM} "
                              "(install Debian's package: apt-get install chromium; .ci/run does)"),
]
pytestmark = BROWSER_MARKS


def collect_errors(page, errors: list[str]) -> None:
    """Record the page's uncaught script errors and console errors in ``errors``."""
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)

AVIDS = ("DEMO-001", "DEMO-002")

# What the page shows, read in one go each poll.
SNAPSHOT_JS = """(avids) => {
  const out = {};
  for (const a of avids) {
    const bar = document.querySelector(`#jobs .job[data-avid="${a}"] [role=progressbar]`);
    const img = document.querySelector(`.card[data-avid="${a}"] img`);
    const job = document.querySelector(`.job[data-avid="${a}"]`);
    out[a] = {
      percent: bar ? Number(bar.getAttribute("aria-valuenow")) : null,
      status: job ? job.className : null,
      cover: Boolean(img && img.complete && img.naturalWidth > 0 && img.classList.contains("loaded")),
    };
  }
  out.live = document.querySelector("#live").className.includes("live-on");
  return out;
}"""


@pytest.fixture
def site():
    # Enough segments, slowly enough, that a download spans several progress events.
    s = FixtureSite.start(titles=AVIDS, stream_kind="aes128", duration_s=10.0, segment_s=1.0)
    s.set_faults(bandwidth_bytes_per_s=80_000)
    yield s
    s.stop()


def test_add_two_avids_watch_progress_and_covers(site, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir,
                            extra={"download": {"concurrency": 2}})
    svc = Service(cfg, data_dir)
    errors: list[str] = []
    try:
        svc.wait_ready()
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1360, "height": 900}, color_scheme="dark", locale="en-US")
            try:
                page = ctx.new_page()
                collect_errors(page, errors)
                page.goto(svc.base + "/", wait_until="domcontentloaded")
                page.wait_for_function("document.querySelector('#live').className.includes('live-on')",
                                       timeout=15_000)
                # Many at once, as pasted: mixed separators, lower case, one title nobody has.
                page.fill("#add-input", "demo-001, demo002\nNOPE-999")
                page.click("#add-button")
                page.wait_for_selector("#add-results .chip.ok", timeout=10_000)
                # The title no source has fails, and the page says why, source by source.
                failed = page.wait_for_selector('.job.failed[data-avid="NOPE-999"]', timeout=30_000)
                reasons = failed.inner_text()
                assert "missav" in reasons and "jable" in reasons, reasons

                keep = os.environ.get("NASSAV_SCREENSHOT")
                seen: dict[str, set[float]] = {a: set() for a in AVIDS}
                deadline = time.monotonic() + 90
                snap: dict = {}
                while time.monotonic() < deadline:
                    snap = page.evaluate(SNAPSHOT_JS, list(AVIDS))
                    for a in AVIDS:
                        p = snap[a]["percent"]
                        if p is not None and 0 < p < 100:
                            seen[a].add(p)
                    moved = any(len(v) >= 2 for v in seen.values())
                    if moved and keep and not Path(keep + ".progress.png").exists():
                        page.screenshot(path=keep + ".progress.png", full_page=True)
                    covers = all(snap[a]["cover"] for a in AVIDS)
                    if moved and covers:
                        break
                    time.sleep(0.1)
                assert all(snap[a]["cover"] for a in AVIDS), f"covers missing from the grid: {snap}"
                assert any(len(v) >= 2 for v in seen.values()), \
                    f"no progress bar moved (percentages seen: {seen}); last view {snap}\n{svc.output()}"

                # Both finish; the queue shows them as done and the grid marks them as videos.
                page.wait_for_function(
                    """(avids) => avids.every(a => {
                         const j = document.querySelector(`.job[data-avid="${a}"]`);
                         const c = document.querySelector(`.card[data-avid="${a}"] .badge.video`);
                         return j && j.classList.contains('completed') && c; })""",
                    arg=list(AVIDS), timeout=90_000)
                shot = tmp_path / "page.png"
                page.screenshot(path=str(shot), full_page=True)
                if keep:
                    shutil.copy(shot, keep)
                assert not errors, errors
            finally:
                ctx.close()
    finally:
        svc.stop()


def test_token_is_asked_once_and_remembered(redis_url, r, tmp_path):
    from tests.live_server import live_gateway

    with live_gateway(tmp_path / "data", redis_url, api_token="tok-Secret_1") as gw, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 420, "height": 860}, color_scheme="light", locale="en-US")
        try:
            page = ctx.new_page()
            page.goto(gw.base + "/", wait_until="domcontentloaded")
            page.wait_for_selector("#token-dialog[open]", timeout=10_000)
            page.fill("#token-input", "wrong")
            page.click("#token-form button[value=ok]")
            # Refused: asked again, saying so.
            page.wait_for_selector("#token-dialog[open] #token-error:not([hidden])", timeout=10_000)
            page.fill("#token-input", "tok-Secret_1")
            page.click("#token-form button[value=ok]")
            # The API and the WebSocket (token as subprotocol) both let the page in.
            page.wait_for_function("document.querySelector('#live').className.includes('live-on')",
                                   timeout=15_000)
            assert "empty" in page.inner_text("#library-empty")
            assert page.evaluate("localStorage.getItem('nassav.token')") == "tok-Secret_1"
            keep = os.environ.get("NASSAV_SCREENSHOT")
            if keep:
                page.screenshot(path=keep + ".mobile.png", full_page=True)
            page.reload(wait_until="domcontentloaded")
            page.wait_for_function("document.querySelector('#live').className.includes('live-on')",
                                   timeout=15_000)
            assert not page.evaluate("document.querySelector('#token-dialog').open")
        finally:
            ctx.close()
