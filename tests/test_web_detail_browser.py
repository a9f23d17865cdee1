"""The detail view in a real headless Chromium, on `nassav up` and the fixture site.

A title is added (metadata only), opened from its card, downloaded from the detail view (live
progress shown); the MP4 the pipeline made (H.264 + AAC from the bundled ffmpeg, through the real
HLS engine) plays in the ``<video>`` element and seeks, served by ``GET /api/resource/{avid}/video``
with byte ranges; favourite survives a reload of ``/#/AVID``; Esc closes and gives the focus back;
delete video removes the player and the file and keeps the metadata; the history of attempts
lists what happened; a title not in the library says so; it fits a phone's width.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import wait_for
from tests.e2e_helpers import Service, http
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, collect_errors, sync_playwright
from tools.fixture_site import FixtureSite

pytestmark = BROWSER_MARKS

AVID = "DEMO-001"

VIDEO_STATE_JS = """() => {
  const v = document.querySelector('#detail video');
  return v && {t: v.currentTime, d: v.duration, paused: v.paused, ready: v.readyState,
               err: v.error && (v.error.code + ' ' + v.error.message)};
}"""


@pytest.fixture
def site():
    s = FixtureSite.start(titles=(AVID,), stream_kind="clear", duration_s=8.0, segment_s=2.0)
    yield s
    s.stop()


def wait_attempt(base: str, avid: str, status: str, timeout_s: float = 90, kind: str = "") -> dict:
    """The AVID's latest attempt once it has ``status`` (and ``kind`` when given: the index may
    still show the previous job for a moment after a new one is submitted)."""
    def done():
        code, body = http("GET", f"{base}/api/resource/{avid}/attempts")
        items = body.get("data") or [] if code == 200 else []
        if not items or items[0]["status"] != status or (kind and items[0]["kind"] != kind):
            return None
        return items[0]
    return wait_for(done, timeout_s, 0.3, f"a {status} attempt for {avid}")


def test_detail_view_plays_seeks_and_acts(site, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir)
    svc = Service(cfg, data_dir)
    errors: list[str] = []
    video_statuses: list[int] = []
    try:
        svc.wait_ready()
        code, body = http("POST", svc.base + "/api/resource", {"avid": AVID})
        assert code == 202, body
        wait_attempt(svc.base, AVID, "completed")
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                args=ARGS + ["--autoplay-policy=no-user-gesture-required"],
                viewport={"width": 1280, "height": 900}, color_scheme="dark")
            try:
                page = ctx.new_page()
                collect_errors(page, errors)
                page.on("response", lambda r: video_statuses.append(r.status)
                        if "/video" in r.url and r.request.method == "GET" else None)
                page.goto(svc.base + "/", wait_until="domcontentloaded")
                page.wait_for_function("document.querySelector('#live').className.includes('live-on')",
                                       timeout=15_000)
                codecs = page.evaluate("""() => document.createElement('video')
                    .canPlayType('video/mp4; codecs="avc1.640028, mp4a.40.2"')""")
                assert codecs == "probably", f"this Chromium cannot play H.264/AAC MP4: {codecs!r}"

                # Opened from its card: no video yet, so a Download action and the cover.
                page.click(f'.card[data-avid="{AVID}"] a.open')
                page.wait_for_selector("#detail[open] [data-action=download]", timeout=10_000)
                assert page.evaluate("location.hash") == f"#/{AVID}"
                assert page.evaluate("document.activeElement.closest('#detail') !== null")
                # The actions are drawn as the view opens; the facts and history when its
                # metadata, history and blocklist requests have answered.
                page.wait_for_function("document.querySelector('#detail .detail-facts').innerText !== ''",
                                       timeout=10_000)
                facts = page.inner_text("#detail .detail-facts")
                assert "Source" in facts and "missav" in facts.lower() or "jable" in facts.lower(), facts
                history = page.inner_text("#detail .detail-history")
                assert "completed" in history and "metadata" in history, history

                # Download from the detail view: the live progress shows, then the player.
                page.click("#detail [data-action=download]")
                page.wait_for_selector("#detail .detail-live:not([hidden])", timeout=15_000)
                page.wait_for_selector("#detail video", timeout=90_000)
                assert (data_dir / AVID / f"{AVID}.mp4").stat().st_size > 0

                # It plays: currentTime advances.
                page.evaluate("""() => { const v = document.querySelector('#detail video');
                                         v.muted = true; return v.play(); }""")
                page.wait_for_function("document.querySelector('#detail video').currentTime > 0.8",
                                       timeout=20_000)
                state = page.evaluate(VIDEO_STATE_JS)
                assert state["err"] is None and 7 < state["d"] < 9, state

                # It seeks: `seeked` fires at the new point and playback goes on from there.
                seeked_at = page.evaluate("""() => new Promise((resolve, reject) => {
                    const v = document.querySelector('#detail video');
                    v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
                    v.addEventListener('error', () => reject(String(v.error && v.error.message)), {once: true});
                    v.currentTime = 5.0;
                })""")
                assert 4.9 <= seeked_at <= 5.2, seeked_at
                page.wait_for_function("document.querySelector('#detail video').currentTime > 5.4",
                                       timeout=20_000)
                assert 206 in video_statuses, f"the player never got a byte range: {video_statuses}"
                keep = os.environ.get("NASSAV_SCREENSHOT")
                if keep:
                    page.screenshot(path=keep + ".detail.png")

                # Favourite toggles, is stored, and survives a reload of the detail's address.
                page.click("#detail [data-action=favourite]")
                page.wait_for_selector("#detail [data-action=favourite][aria-pressed=true]", timeout=10_000)
                code, meta = http("GET", f"{svc.base}/api/resource/metadata?avid={AVID}")
                assert meta["data"]["user"]["is_favorite"] is True
                page.reload(wait_until="domcontentloaded")
                page.wait_for_selector("#detail[open] [data-action=favourite][aria-pressed=true]", timeout=15_000)
                page.wait_for_selector("#detail video", timeout=10_000)

                # Watched toggles too; refresh queues a metadata job that lands in the history.
                page.click("#detail [data-action=watched]")
                page.wait_for_selector("#detail [data-action=watched][aria-pressed=true]", timeout=10_000)
                code, meta = http("GET", f"{svc.base}/api/resource/metadata?avid={AVID}")
                assert meta["data"]["user"] == {"watched": True, "is_favorite": True}
                page.click("#detail [data-action=refresh]")
                page.wait_for_function(
                    "document.querySelectorAll('#detail .detail-history .attempt.completed').length === 3",
                    timeout=60_000)
                page.wait_for_selector("#detail video", timeout=10_000)  # the player stays

                # Esc closes it, clears the address and gives the focus back to the card.
                page.keyboard.press("Escape")
                page.wait_for_function("!document.querySelector('#detail').open && location.hash === ''",
                                       timeout=5_000)
                page.wait_for_selector(f'.card[data-avid="{AVID}"] a.open', timeout=10_000)
                page.click(f'.card[data-avid="{AVID}"] a.open')
                page.wait_for_selector("#detail[open] video", timeout=10_000)
                page.keyboard.press("Escape")
                page.wait_for_function(
                    "document.activeElement && document.activeElement.matches('.card[data-avid=\"%s\"] a.open')" % AVID,
                    timeout=5_000)
                assert page.evaluate("location.hash") == ""  # cleared at once, not when `close` comes

                # Delete video (confirmed): the player and the file go, the metadata stays.
                page.keyboard.press("Enter")  # the focused card link opens it again
                page.wait_for_selector("#detail[open] [data-action=delete-video]", timeout=10_000)
                page.once("dialog", lambda d: d.accept())
                page.click("#detail [data-action=delete-video]")
                page.wait_for_function("!document.querySelector('#detail video')", timeout=10_000)
                page.wait_for_selector("#detail [data-action=download]", timeout=10_000)
                assert not (data_dir / AVID / f"{AVID}.mp4").exists()
                assert (data_dir / AVID / f"{AVID}.json").exists()
                assert "Released" in page.inner_text("#detail .detail-facts")
                code, meta = http("GET", f"{svc.base}/api/resource/metadata?avid={AVID}")
                assert code == 200 and meta["data"]["has_video"] is False
                history = page.inner_text("#detail .detail-history")
                assert history.count("completed") == 3 and "download" in history, history

                # A phone: the dialog is the whole width, and nothing runs off to the side.
                page.set_viewport_size({"width": 390, "height": 800})
                box = page.evaluate("""() => { const d = document.querySelector('#detail');
                    const r = d.getBoundingClientRect();
                    return {w: r.width, sw: d.scrollWidth, cw: d.clientWidth}; }""")
                assert box["w"] <= 390 and box["sw"] <= box["cw"] + 1, box
                if keep:
                    page.screenshot(path=keep + ".detail-phone.png")

                assert not errors, errors

                # A title not in the library: the API's 404 is shown, not swallowed (the browser
                # logs the 404 itself; nothing else may go wrong).
                page.goto(svc.base + "/#/NOPE-999", wait_until="domcontentloaded")
                page.wait_for_selector("#detail[open] .detail-notice:not([hidden])", timeout=10_000)
                assert "NOPE-999 is not in the library" in page.inner_text("#detail .detail-notice")
                assert page.locator("#detail [data-action=download]").is_visible()
                assert [e for e in errors if "status of 404" not in e] == [], errors
            finally:
                ctx.close()
    finally:
        svc.stop()
