"""Deleting the video of a title imported in place: the file is the user's original where it
lies, so nassav's own ``DELETE /api/resource/{avid}/video`` answers 409 (naming the path and
``?delete_file=true``) and leaves it untouched until confirmed; the old client's delete keeps
its contract (it deletes). A real import on the real disk, real Redis, the gateway in-process."""

from __future__ import annotations

import hashlib

from tests.api_helpers import gateway
from tests.conftest import wait_for
from tests.live_server import live_gateway
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, sync_playwright
from tests.test_library_videos import imported  # noqa: F401 - the fixture: DEMO-003 in place


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_in_place_video_is_deleted_only_when_confirmed(imported, redis_url):  # noqa: F811
    _, _, data, in_place = imported
    before, mtime = _digest(in_place), in_place.stat().st_mtime_ns
    with gateway(data, redis_url) as c:
        for query in ("", "?delete_file=false"):
            res = c.delete(f"/api/resource/DEMO-003/video{query}")
            assert res.status_code == 409, res.text
            body = res.json()
            assert str(in_place) in body["message"] and "?delete_file=true" in body["message"]
            assert "original" in body["message"] and "imported in place" in body["message"]
            assert body["data"]["in_place"] is True and body["data"]["files"] == [str(in_place)]
            assert body["data"]["confirm"] == "DELETE /api/resource/DEMO-003/video?delete_file=true"
        bad = c.delete("/api/resource/DEMO-003/video?delete_file=please")
        assert bad.status_code == 400 and "delete_file must be true or false" in bad.json()["message"]

        # Untouched: the same bytes, not even renamed and back, and still the title's video.
        assert _digest(in_place) == before and in_place.stat().st_mtime_ns == mtime
        assert sorted(p.name for p in in_place.parent.iterdir() if p.name.startswith(".deleting")) == []
        assert c.get("/api/resource/metadata?avid=DEMO-003").json()["data"]["has_video"] is True
        assert c.get("/api/resource/DEMO-003/video").content == in_place.read_bytes()

        res = c.delete("/api/resource/DEMO-003/video?delete_file=true")
        assert res.status_code == 200, res.text
        assert res.json()["data"]["deleted_files"] == [str(in_place)] and not in_place.exists()
        assert (data / "DEMO-003" / "DEMO-003.json").is_file()  # metadata stays, as for any title
        row = c.get("/api/resources/?search=DEMO-003").json()["data"][0]
        assert row["has_video"] is False

        # A title whose video nassav holds in its own folder needs no confirmation.
        res = c.delete("/api/resource/DEMO-001/video")
        assert res.status_code == 200 and res.json()["data"]["deleted_files"] == ["DEMO-001/DEMO-001.mkv"]


def test_the_old_clients_delete_keeps_its_contract_and_deletes_the_file(imported, redis_url):  # noqa: F811
    _, _, data, in_place = imported
    size = in_place.stat().st_size
    with gateway(data, redis_url) as c:
        res = c.delete("/nassav/api/downloads/DEMO-003")
        assert res.status_code == 200, res.text
        got = res.json()["data"]
        assert got["deleted_file"] == in_place.name and got["file_size"] == size and not in_place.exists()


def test_the_detail_view_asks_before_deleting_an_in_place_original(imported, redis_url):  # noqa: F811
    """In a real headless Chromium (rules of tests/test_web_browser.py): Delete video on an
    in-place title asks a second time, naming the file; declined, the file stays; accepted, it goes."""
    _, _, data, in_place = imported
    before = _digest(in_place)
    with live_gateway(data, redis_url) as g, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_context(locale="en-US").new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            asked: list[str] = []
            answers: list[bool] = []

            def answer(d) -> None:
                asked.append(d.message)
                d.accept() if answers.pop(0) else d.dismiss()
            page.on("dialog", answer)

            def until(cond, what: str) -> None:
                # Playwright's sync API runs the dialog handler only while it is called: wait in it.
                wait_for(lambda: page.wait_for_timeout(50) or cond(), 10, 0, what)
            page.goto(g.base + "/#/DEMO-003", wait_until="domcontentloaded")
            page.wait_for_selector("#detail[open] [data-action=delete-video]", timeout=15_000)

            answers[:] = [True, False]  # yes to "delete the video?", no to "delete your original?"
            page.click("#detail [data-action=delete-video]")
            until(lambda: len(asked) == 2, "the second question")
            assert "your original file" in asked[1] and str(in_place) in asked[1], asked
            assert in_place.exists() and _digest(in_place) == before

            answers[:] = [True, True]
            page.click("#detail [data-action=delete-video]")
            until(lambda: not in_place.exists(), "the confirmed delete")
            page.wait_for_selector("#detail [data-action=download]", timeout=10_000)
            assert len(asked) == 4 and (data / "DEMO-003" / "DEMO-003.json").is_file()
            assert not errors, errors
        finally:
            browser.close()


# The browser test's skip rules are tests/test_web_browser.py's (the API tests above always run).
for _mark in BROWSER_MARKS:
    test_the_detail_view_asks_before_deleting_an_in_place_original = _mark(
        test_the_detail_view_asks_before_deleting_an_in_place_original)
