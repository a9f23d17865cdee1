"""The original NASSAV Vue client (v1.3.2), built, driven in Chromium against nassav.

The client is not part of this repository: build it and point ``NASSAV_OLD_CLIENT_DIST`` at its
``dist/`` (docs/compat.md, "Running the old client", has the commands). Without it this test
skips (CI has no built client). The page is served by ``tools/old_client.py`` (one origin,
``/nassav/`` passed to a real ``nassav up`` on the fixture site), as the old nginx served it.

One walk, as a user: add a title, see it and its cover in the library, download it from the
detail page and watch the live queue, favourite/watched across a reload, delete only the video,
open an actor's and a genre's page from the detail page, and save the display settings. Any page
error, console error or failed request to the page's own origin fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, stop_group, wait_for
from tests.e2e_helpers import Service, http
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM, sync_playwright
from tools.fixture_site import FixtureSite



def built_client() -> Path | None:
    """The built client's ``dist/`` named by ``NASSAV_OLD_CLIENT_DIST``, when it has an index.html."""
    dist = os.environ.get("NASSAV_OLD_CLIENT_DIST", "")
    return Path(dist) if dist and (Path(dist) / "index.html").is_file() else None


pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.skipif(built_client() is None,
                       reason="real-client test skipped: set NASSAV_OLD_CLIENT_DIST to a built dist/ of the "
                              "original Vue client (Florenz0707/NASSAV vue_frontend, npm run build); CI has "
                              "none — docs/compat.md 'Running the old client' has the commands"),
]

AVID = "DEMO-001"


class Problems:
    """What the browser reports that a working page never does."""

    def __init__(self, origin: str):
        self.origin, self.seen = origin, []

    def watch(self, page) -> None:
        page.on("pageerror", lambda e: self.seen.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg) -> None:
        # Resource failures are reported by the request handlers (which know the origin).
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.seen.append(f"console error: {msg.text[:300]}")

    def _failed(self, req) -> None:
        # The client asks Google Fonts for a web font; a machine offline cannot reach it.
        if req.url.startswith(self.origin) and "aborted" not in (req.failure or ""):
            self.seen.append(f"request failed: {req.method} {req.url} {req.failure}")

    def _response(self, resp) -> None:
        if resp.url.startswith(self.origin) and resp.status >= 400:
            self.seen.append(f"HTTP {resp.status}: {resp.request.method} {resp.url}")

    def take(self) -> list[str]:
        out, self.seen = self.seen, []
        return out


@pytest.fixture
def served(tmp_path):
    site = FixtureSite.start(titles=(AVID, "DEMO-002", "DEMO-003"), stream_kind="clear", duration_s=8.0, segment_s=1.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # One segment at a time, each slowed at the CDN, so the queue can be watched mid-download.
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data_dir, extra={"download": {"concurrency": 1}})
    svc = Service(cfg, data_dir, drop_redis_env=True)
    proxy = None
    try:
        svc.wait_ready()
        port = free_port()
        proxy_log = open(tmp_path / "old_client.log", "wb")
        proxy = subprocess.Popen([sys.executable, "-m", "tools.old_client", "--dist", str(built_client()),
                                  "--gateway", svc.base, "--port", str(port)],
                                 cwd=ROOT, stdout=proxy_log, stderr=subprocess.STDOUT, start_new_session=True)
        origin = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(origin), 20, 0.2, "tools/old_client.py to answer")
        yield svc, site, origin, data_dir
    finally:
        if proxy is not None:
            stop_group(proxy, timeout_s=10)
        svc.stop()
        site.stop()


def _up(origin: str) -> bool:
    try:
        return http("GET", origin + "/nassav/api/source/list", timeout_s=2)[0] == 200
    except OSError:
        return False


@contextmanager
def browser_page(tmp_path: Path, problems: Problems):
    """A Chromium page watched by ``problems``; yields (context, page)."""
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1360, "height": 900}, locale="zh-CN")
        try:
            page = ctx.new_page()
            problems.watch(page)
            yield ctx, page
        finally:
            ctx.close()


def pump_until(page, predicate, timeout_s: float, what: str) -> None:
    """Wait for ``predicate`` while Playwright dispatches the page's events (console, requests,
    routed sockets): its sync API delivers them only inside its own calls, never during a sleep."""
    for _ in range(int(timeout_s * 10)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def record_rows(page) -> None:
    """From now on, every 50 ms, the texts of the live queue's rows (read back by ``recorded_rows``)."""
    page.evaluate("""() => { window.seenRows = []; window.seenTimer = setInterval(() =>
        window.seenRows.push([...document.querySelectorAll('.task-row')].map(r => r.innerText)), 50) }""")


def recorded_rows(page) -> list[list[str]]:
    """What ``record_rows`` saw, oldest first; stops the recording."""
    return page.evaluate("() => { clearInterval(window.seenTimer); return window.seenRows }")


def test_the_old_client_walk(served, tmp_path):
    svc, site, origin, data_dir = served
    problems = Problems(origin)
    with browser_page(tmp_path, problems) as (ctx, page):
        # Add page: the sources are listed (names), and one AVID is added.
        page.goto(origin + "/add")
        page.wait_for_selector("select.form-select option[value=missav]", state="attached", timeout=15_000)
        page.fill("textarea.form-textarea", AVID)
        page.click("button[type=submit]")
        card = page.wait_for_selector(".result-card", timeout=30_000).inner_text()
        assert "添加成功" in card and AVID in card and "missav" in card, card
        # A metadata job is no download: no "started/finished downloading" toast.
        page.wait_for_timeout(1500)
        assert "开始下载" not in page.inner_text("body") and "下载完成" not in page.inner_text("body")
        assert problems.take() == []

        # Library: the card and its cover.
        page.goto(origin + "/resources")
        cover = page.wait_for_selector(f"img[src*='avid={AVID}']", timeout=15_000)
        wait_for(lambda: cover.evaluate("i => i.complete && i.naturalWidth > 0"), 10, 0.1, "the cover to load")
        assert problems.take() == []

        # Detail page: not downloaded; source and actors as names.
        page.goto(origin + f"/resource/{AVID}")
        page.wait_for_selector("text=未下载", timeout=15_000)
        body = page.inner_text("body")
        assert "missav" in body and "{" not in body, body[:2000]
        assert "Mio Stubbington" in body, body[:2000]

        # Download from the detail page; the live queue shows it with progress until it ends.
        site.set_faults(latency_ms=400)
        page.click("text=下载视频")
        page.wait_for_selector("text=下载任务已提交", timeout=15_000)
        page.click("a[href='/downloads']")
        page.wait_for_selector(f".task-row:has-text('{AVID}')", timeout=30_000)
        record_rows(page)  # until the download ends: a blink of the list would show as a gap
        page.wait_for_selector(f".task-row.is-active:has-text('{AVID}') .progress-text:not(.pending)",
                               timeout=60_000)
        page.wait_for_selector("text=暂无下载任务", timeout=120_000)
        seen = recorded_rows(page)
        present = [any(AVID in r for r in rows) for rows in seen]
        first, last = present.index(True), len(present) - 1 - present[::-1].index(True)
        assert all(present[first:last + 1]), "the row left the live list while its download ran"
        percents = {r.split()[-1] for rows in seen for r in rows if AVID in r and r.split()[-1].endswith("%")}
        assert len(percents) >= 2, percents  # progress moved while watched
        page.wait_for_selector("text=下载完成", timeout=10_000)  # the client's own toast
        assert (data_dir / AVID / f"{AVID}.mp4").is_file()
        assert problems.take() == []

        # Detail page again: downloaded; favourite and watched survive a reload.
        page.goto(origin + f"/resource/{AVID}")
        page.wait_for_selector("text=已下载", timeout=15_000)
        page.click("button:has-text('收藏')")
        page.wait_for_selector("text=已收藏", timeout=10_000)
        page.click("button:has-text('标记观看')")
        page.wait_for_selector("text=已观看", timeout=10_000)
        page.reload()
        page.wait_for_selector("text=已下载", timeout=15_000)
        page.wait_for_selector("text=已收藏", timeout=10_000)
        page.wait_for_selector("text=已观看", timeout=10_000)

        # Play copies the file's path (GET /downloads/abspath); a full refresh succeeds.
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        page.click("button:has-text('点击播放')")
        page.wait_for_selector("text=视频路径已复制到剪贴板", timeout=10_000)
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied.startswith("file:/") and copied.endswith(f"{AVID}/{AVID}.mp4"), copied
        page.click("button:has-text('刷新信息')")
        page.click("button:has-text('全部刷新')")
        page.wait_for_selector("text=刷新成功", timeout=30_000)
        page.wait_for_selector("text=已下载", timeout=15_000)
        assert problems.take() == []

        # Delete only the video: the metadata, the cover and the page stay.
        page.click("button:has-text('删除数据')")
        page.click("button:has-text('删除视频')")
        page.click("button:has-text('确认删除')")
        page.wait_for_selector("text=未下载", timeout=15_000)
        assert not (data_dir / AVID / f"{AVID}.mp4").exists()
        assert any((data_dir / AVID).glob("*.json")), list((data_dir / AVID).iterdir())
        assert "Mio Stubbington" in page.inner_text("body")
        assert problems.take() == []

        # The actor's and the genre's pages, opened from the detail page, head with their name.
        page.click("button:has-text('Mio Stubbington')")
        page.wait_for_url("**/actors/*", timeout=10_000)
        page.wait_for_selector(".text-xl:has-text('Mio Stubbington')", timeout=10_000)
        page.go_back()
        page.wait_for_selector("text=未下载", timeout=15_000)
        genre = page.inner_text("button:has-text('旅行')").strip().rstrip(",").strip()
        page.click("button:has-text('旅行')")
        page.wait_for_url("**/genres/*", timeout=10_000)
        page.wait_for_selector(f".text-2xl:has-text('{genre}')", timeout=10_000)
        assert problems.take() == []

        # The actor and genre lists, and the cookie tab (one row per source).
        page.goto(origin + "/resources/actors")
        page.wait_for_selector("text=Mio Stubbington", timeout=10_000)
        page.goto(origin + "/resources/genres")
        page.wait_for_selector(f"text={genre}", timeout=10_000)
        page.goto(origin + "/settings")
        page.click("text=Cookie 管理")
        page.wait_for_selector("td:has-text('missav')", timeout=10_000)
        assert problems.take() == []

        # Settings: read, changed, saved, read back after a reload (and by the API).
        page.goto(origin + "/settings")
        page.click("text=通用设置")
        select = page.wait_for_selector("select:has(option[value=original_title])", timeout=10_000)
        code, before = http("GET", svc.base + "/nassav/api/setting")
        assert code == 200 and select.input_value() == before["data"]["display_title"], before
        page.select_option("select:has(option[value=original_title])", "original_title")
        page.click("button.inline-flex.h-6.w-11")  # the avatar switch
        page.click("button:has-text('保存设置')")
        page.wait_for_selector("text=设置已保存", timeout=10_000)
        code, after = http("GET", svc.base + "/nassav/api/setting")
        assert after["data"]["display_title"] == "original_title", after
        assert after["data"]["enable_avatar"] != before["data"]["enable_avatar"], (before, after)
        page.reload()
        page.click("text=通用设置")
        wait_for(lambda: page.input_value("select:has(option[value=original_title])") == "original_title",
                 10, 0.1, "the saved title field after a reload")
        assert problems.take() == []


def test_the_old_client_batch_walk(served, tmp_path):
    """Batch add (added, existing, failed), batch download (one active, the rest waiting, as the
    old queue showed) and batch delete of the videos, from the library's batch mode."""
    svc, site, origin, data_dir = served
    avids = (AVID, "DEMO-002", "DEMO-003")
    code, body = http("POST", origin + "/nassav/api/resource", {"avid": AVID, "source": "any"}, timeout_s=30)
    assert code == 201, body
    problems = Problems(origin)
    with browser_page(tmp_path, problems) as (ctx, page):
        page.goto(origin + "/add")
        page.wait_for_selector("select.form-select option[value=missav]", state="attached", timeout=15_000)
        page.fill("textarea.form-textarea", " ".join(avids) + " NOPE-999")
        page.click("button[type=submit]")
        stats = page.wait_for_selector(".batch-result-stats", timeout=40_000).inner_text().split()
        assert stats == ["✓", "成功", "2", "ℹ", "已存在", "1", "✕", "失败", "1"], stats
        assert problems.take() == []

        site.set_faults(latency_ms=300)
        page.goto(origin + "/resources")
        page.wait_for_selector("text=DEMO-003", timeout=15_000)
        page.click("text=批量操作")
        page.click("text=已选择")
        page.wait_for_selector("text=已选择 3 项", timeout=5_000)
        page.click("text=批量下载")
        page.wait_for_selector("text=已提交 3 个下载任务", timeout=15_000)
        page.click("a[href='/downloads']")
        record_rows(page)
        page.wait_for_selector(".task-row.is-active", timeout=60_000)
        page.wait_for_selector("text=暂无下载任务", timeout=180_000)
        seen = recorded_rows(page)
        # At some moment one row downloads while another waits ("排队中"), as the old queue showed.
        assert any(len(rows) >= 2 and sum("排队中" in r for r in rows) == len(rows) - 1 for rows in seen), seen[:20]
        assert all((data_dir / a / f"{a}.mp4").is_file() for a in avids)
        assert problems.take() == []

        page.goto(origin + "/resources")
        page.wait_for_selector("text=DEMO-003", timeout=15_000)
        page.click("text=批量操作")
        page.click("text=已选择")
        page.click("text=批量删除")
        page.click("button:has-text('删除视频')")
        page.wait_for_selector("text=已删除视频: 3 个资源", timeout=15_000)
        assert not any((data_dir / a / f"{a}.mp4").exists() for a in avids)
        assert all((data_dir / a / f"{a}.json").is_file() for a in avids)
        assert problems.take() == []


def test_the_downloads_page_polls_when_the_socket_is_lost(served, tmp_path):
    """With the task socket cut (and every reconnect refused), the downloads page falls back to
    polling GET /tasks/queue/status each second: the running download shows with its progress."""
    svc, site, origin, data_dir = served
    cut = {"now": False, "open": []}

    def task_socket(ws) -> None:
        if cut["now"]:
            ws.close(code=1011)
        else:
            ws.connect_to_server()
            cut["open"].append(ws)

    problems = Problems(origin)
    with browser_page(tmp_path, problems) as (ctx, page):
        page.route_web_socket("**/nassav/ws/tasks/", task_socket)
        polls: list[str] = []
        logged: list[str] = []
        page.on("request", lambda r: "/nassav/api/tasks/queue/status" in r.url and polls.append(r.url))
        page.on("console", lambda m: logged.append(m.text))
        page.goto(origin + "/downloads")
        page.wait_for_selector("text=暂无下载任务", timeout=15_000)
        # The page polls only after a socket that was up goes down.
        pump_until(page, lambda: any("连接成功" in t for t in logged), 10, "the client's task socket to open")
        cut["now"] = True
        for ws in cut["open"]:
            ws.close(code=1001)
        pump_until(page, lambda: polls, 10, "the page to poll the queue")

        site.set_faults(latency_ms=400)
        code, body = http("POST", origin + "/nassav/api/downloads/" + AVID)
        assert code == 202, body
        record_rows(page)
        page.wait_for_selector(f".task-row.is-active:has-text('{AVID}') .progress-text:not(.pending)",
                               timeout=60_000)
        page.wait_for_selector("text=暂无下载任务", timeout=120_000)
        percents = {r.split()[-1] for rows in recorded_rows(page) for r in rows if AVID in r}
        assert any(p.endswith("%") and p != "0.0%" for p in percents), percents
        assert (data_dir / AVID / f"{AVID}.mp4").is_file()
        # The refused reconnects are the test's doing; nothing else may have gone wrong.
        assert [p for p in problems.take() if "WebSocket" not in p] == []
