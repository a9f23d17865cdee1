"""The web page's "Import a collection" dialog in a real headless Chromium, on `nassav up` and
the fixture site: a refused folder says why; a dry run shows the plan; the import follows its
progress and lists the files left where they are, with the reason; the library shows the titles."""

from __future__ import annotations

from tests.e2e_helpers import Service
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tools.fixture_site import FixtureSite
from tools.import_collection import make_collection

pytestmark = BROWSER_MARKS


def test_import_dialog_runs_an_import_and_lists_what_stayed(tmp_path):
    col = make_collection(tmp_path / "old", 24)
    site = FixtureSite.start(titles=tuple(col.known))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir,
                            extra={"library": {"import_roots": [str(col.root)]}})
    svc = Service(cfg, data_dir)
    errors: list[str] = []
    try:
        svc.wait_ready()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                collect_errors(page, errors)
                page.goto(svc.base + "/", wait_until="domcontentloaded")
                page.wait_for_function("document.querySelector('#live').className.includes('live-on')",
                                       timeout=15_000)
                page.click("#import-open")
                page.wait_for_selector("#import-dialog[open]")

                page.fill("#import-path", str(tmp_path))
                page.click("#import-start")
                page.wait_for_function("document.querySelector('#import-status').textContent.includes('Refused')",
                                       timeout=10_000)
                assert "not under an import root" in page.inner_text("#import-status")

                page.fill("#import-path", str(col.root))
                page.click("#import-start")  # the dry run is ticked by default
                page.wait_for_function("document.querySelector('#import-status').textContent.startsWith('Plan:')",
                                       timeout=60_000)
                assert not list(data_dir.glob("*/*.mp4"))

                page.select_option("#import-mode", "copy")
                page.uncheck("#import-dry-run")
                page.click("#import-start")
                page.wait_for_function(
                    "document.querySelector('#import-status').textContent.startsWith('Imported')", timeout=120_000)
                assert page.evaluate("document.querySelector('#import-bar').value") == 100
                left = page.inner_text("#import-left")
                for rel, want in col.files.items():
                    if want.action == "place":
                        assert (data_dir / want.avid / want.target).is_file(), rel
                    else:
                        assert want.reason in left, (rel, left)
                placed = next(e for e in col.files.values() if e.action == "place")
                page.keyboard.press("Escape")
                page.wait_for_selector(f'.card[data-avid="{placed.avid}"]', timeout=20_000)
            finally:
                browser.close()
    finally:
        svc.stop()
        site.stop()
    # The refused folder's 400 is logged by Chromium itself; nothing else may be.
    assert not [e for e in errors if "status of 400" not in e], errors
