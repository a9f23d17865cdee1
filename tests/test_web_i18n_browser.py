"""The web page in Simplified Chinese and English, in a real headless Chromium.

A browser whose locale is zh-CN gets the page in Chinese from the first painted frame (``<html
lang>``, the words, the CJK font stack); the top bar's switch turns it to English, in place, and
the choice outlives a reload; an en-US browser gets English. Same rules for running as
``tests/test_web_browser.py`` (Debian's chromium through Playwright, skipped with the reason).
Set ``NASSAV_SCREENSHOT=/some/file`` to keep ``/some/file.zh-CN.png``, the page in Chinese.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests.api_helpers import put_resource
from tests.live_server import live_gateway
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

pytestmark = BROWSER_MARKS

# Before any page script: at every animation frame (each runs just before a paint) until the
# page has loaded, note <html lang> and the text of every data-i18n element then in the page.
FRAMES_JS = """(() => {
  window.__frames = [];
  const look = () => {
    window.__frames.push({
      lang: document.documentElement.lang,
      texts: Array.from(document.querySelectorAll("[data-i18n]"), (e) => [e.dataset.i18n, e.textContent]),
    });
    if (document.readyState !== "complete" || window.__frames.length < 3) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();"""

LIVE = "document.querySelector('#live').className.includes('live-on')"
WORDS_JS = """() => ({
  lang: document.documentElement.lang,
  add: document.querySelector("#add-button").textContent,
  library: document.querySelector("#library-title [data-i18n]").textContent,
  queueEmpty: document.querySelector("#jobs-empty").textContent,
  placeholder: document.querySelector("#search").placeholder,
  inputLabel: document.querySelector("#add-input").getAttribute("aria-label"),
  live: document.querySelector("#live b").textContent,
  badge: (document.querySelector(".card .badge") || {}).textContent,
  health: document.querySelector("#health").textContent,
  switchValue: document.querySelector("#lang-switch").value,
  font: getComputedStyle(document.body).fontFamily,
})"""


@pytest.fixture
def gw(redis_url, r, tmp_path):
    data_dir = tmp_path / "data"
    put_resource(data_dir, "ABC-123", title="Title of ABC-123")  # metadata, no video
    with live_gateway(data_dir, redis_url) as g:
        yield g


@pytest.fixture
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def opened(browser, base: str, locale: str) -> Iterator:
    """The page in a fresh context with this locale, loaded and live; no script error by the end."""
    errors: list[str] = []
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 860})
    try:
        ctx.add_init_script(FRAMES_JS)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.goto(base + "/", wait_until="domcontentloaded")
        page.wait_for_function(LIVE, timeout=15_000)
        page.wait_for_selector(".card .badge", timeout=10_000)
        page.wait_for_function("document.querySelector('#health').textContent !== '…'", timeout=10_000)
        yield page
        assert not errors, errors
    finally:
        ctx.close()


def test_zh_cn_browser_gets_chinese_then_switches_to_english_and_remembers(gw, browser):
    with opened(browser, gw.base, "zh-CN") as page:
        w = page.evaluate(WORDS_JS)
        assert w["lang"] == "zh-CN", w
        assert (w["add"], w["library"], w["queueEmpty"]) == ("添加", "媒体库", "队列中没有任务。"), w
        assert w["placeholder"] == "搜索 AVID、标题、演员……" and w["inputLabel"].startswith("要添加的 AVID"), w
        assert (w["live"], w["badge"]) == ("实时", "元数据"), w
        assert re.fullmatch(r"没有工作进程 · 剩余 [\d.,]+ [KMGT]?B", w["health"]), w["health"]
        assert w["switchValue"] == "zh-CN", w
        for face in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC"):
            assert face in w["font"], w["font"]

        # No frame ever showed an English word: each data-i18n element was Chinese when painted.
        zh = page.evaluate("nassavI18n.dictionaries['zh-CN']")
        frames = page.evaluate("window.__frames")
        assert frames, "no animation frame was recorded"
        for i, f in enumerate(frames):
            assert f["lang"] in ("zh-CN",), f"frame {i} painted with <html lang={f['lang']!r}>"
            wrong = [(k, text) for k, text in f["texts"] if text != zh[k]]
            assert not wrong, f"frame {i} of {len(frames)} painted untranslated text: {wrong}"

        # Words made by the script: a queued job (there is no worker) and its queue count.
        page.fill("#add-input", "def-456")
        page.click("#add-button")
        page.wait_for_selector('.job[data-avid="DEF-456"]', timeout=10_000)
        assert "已加入队列" in page.inner_text("#add-results")
        page.wait_for_function("document.querySelector('#queue-count').textContent.includes('等待中')")
        assert page.inner_text('.job[data-avid="DEF-456"] .stage') == "等待工作进程"
        assert page.inner_text("#queue-count") == "0 个进行中 · 1 个等待中"
        keep = os.environ.get("NASSAV_SCREENSHOT")
        if keep:
            page.screenshot(path=keep + ".zh-CN.png", full_page=True)

        # The switch turns everything to English in place, the script's words included.
        page.select_option("#lang-switch", "en")
        page.wait_for_function("document.documentElement.lang === 'en'")
        page.wait_for_function("document.querySelector('.card .badge').textContent === 'metadata'")
        w = page.evaluate(WORDS_JS)
        assert (w["add"], w["library"], w["queueEmpty"], w["live"]) == ("Add", "Library", "Nothing in the queue.", "live"), w
        assert w["placeholder"] == "Search AVID, title, actor…", w
        assert page.inner_text('.job[data-avid="DEF-456"] .stage') == "waiting for a worker"
        assert page.inner_text("#queue-count") == "0 running · 1 waiting"
        assert "PingFang SC" not in w["font"], w["font"]
        page.wait_for_function("document.querySelector('#health').textContent.startsWith('no workers · ')")
        assert re.fullmatch(r"no workers · [\d.,]+ [KMGT]?B free", page.inner_text("#health"))

        # Remembered: the browser still asks for Chinese, the page stays English.
        page.reload(wait_until="domcontentloaded")
        page.wait_for_function(LIVE, timeout=15_000)
        page.wait_for_selector(".card .badge", timeout=10_000)
        w = page.evaluate(WORDS_JS)
        assert (w["lang"], w["add"], w["badge"], w["switchValue"]) == ("en", "Add", "metadata", "en"), w
        assert page.evaluate("navigator.language") == "zh-CN"
        assert page.evaluate("localStorage.getItem('nassav.lang')") == "en"


def test_en_us_browser_gets_english(gw, browser):
    with opened(browser, gw.base, "en-US") as page:
        w = page.evaluate(WORDS_JS)
        assert (w["lang"], w["add"], w["library"], w["badge"], w["live"]) == ("en", "Add", "Library", "metadata", "live"), w
        assert re.fullmatch(r"no workers · [\d.,]+ [KMGT]?B free", w["health"]) and w["switchValue"] == "en", w
        assert "PingFang SC" not in w["font"], w["font"]
        frames = page.evaluate("window.__frames")
        assert all(f["lang"] == "en" for f in frames), frames


def test_traditional_chinese_browser_gets_simplified_chinese(gw, browser):
    # There is no Traditional dictionary: Simplified reads far better than English (i18n.js says why).
    with opened(browser, gw.base, "zh-TW") as page:
        w = page.evaluate(WORDS_JS)
        assert (w["lang"], w["add"]) == ("zh-CN", "添加"), w
        cases = {
            "zh": "zh-CN", "zh-CN": "zh-CN", "zh-Hans": "zh-CN", "zh-SG": "zh-CN", "zh-Hans-CN": "zh-CN",
            "zh-TW": "zh-CN", "zh-HK": "zh-CN", "zh-Hant": "zh-CN", "en": "en", "en-GB": "en",
            "fr-FR": "en", "ja": "en", "": "en",
        }
        got = page.evaluate("(cases) => Object.fromEntries(cases.map((c) => [c, nassavI18n.negotiate(c ? [c] : [])]))",
                            list(cases))
        assert got == cases
        # The first language of the list the page has wins: Japanese, then Chinese -> Chinese.
        assert page.evaluate("nassavI18n.negotiate(['ja', 'zh-CN', 'en'])") == "zh-CN"
        assert page.evaluate("nassavI18n.negotiate(['fr', 'en-US', 'zh'])") == "en"
