"""Each site's pure parse functions and page classification, on the fixture pages in tests/fixtures/.

No network: the parsers take page text; the classification takes a ``Response`` built from a
fixture page and the status the real site answers it with.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from pipeline.avid import parse
from pipeline.config import HttpConfig, SourceConfig
from pipeline.errors import LayoutChanged, SourceBlocked, SourceNotFound, UnsafeURL, UpstreamError
from pipeline.http import Response
from sources import avtoday, ggjav, hohoj, jable, javbus, kanav, memo, missav, netflav
from sources.base import Found, absolute, mentions_avid, strip_avid
from sources.registry import SOURCE_CLASSES

FIX = Path(__file__).parent / "fixtures"
AVID = parse("FXS-042")
TITLE = "虛構的午後散步 A Fictional Afternoon Walk"
BASE = "http://127.0.0.1:5555/site/x"  # a base URL with a path prefix, as the fixture site has
SITES = sorted(SOURCE_CLASSES) + ["javbus"]


def page(site: str, name: str) -> str:
    return (FIX / site / name).read_text(encoding="utf-8")


def adapter(site: str, *, allow_private: bool = True):
    cfg = SourceConfig(base_url=BASE, weight=10, min_interval_s=0)
    http = HttpConfig(allow_private_urls=allow_private, retries=0)
    if site == "javbus":
        return javbus.JavBusScraper(cfg, http, name="javbus")
    return SOURCE_CLASSES[site](cfg, http)


def classify(site: str, body: str, status: int):
    """The typed outcome a response stands for, or None for a usable page."""
    try:
        adapter(site).classify(Response(status, BASE + "/x", body.encode()), AVID)
    except (SourceBlocked, SourceNotFound, UpstreamError) as e:
        return e
    return None


# -- classification shared by every site ---------------------------------------------------

@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("status", [200, 403, 503])
def test_challenge_page_is_blocked_whatever_the_status(site, status):
    e = classify(site, page(site, "challenge.html"), status)
    assert isinstance(e, SourceBlocked)
    assert e.detail == "challenge page" and e.status == status and e.source == site
    assert e.avid == "FXS-042"


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("status,kind", [(403, SourceBlocked), (451, SourceBlocked), (429, SourceBlocked),
                                         (404, SourceNotFound), (410, SourceNotFound),
                                         (500, UpstreamError), (502, UpstreamError), (503, UpstreamError)])
def test_status_classification(site, status, kind):
    e = classify(site, "<html><body>plain error page</body></html>", status)
    assert type(e) is kind and e.status == status and e.source == site
    assert f"HTTP {status}" in str(e)


@pytest.mark.parametrize("site", ["missav", "jable", "memo", "javbus"])
def test_not_found_page_is_a_404(site):
    assert classify(site, page(site, "not_found.html"), 404).__class__ is SourceNotFound


@pytest.mark.parametrize("site", SITES)
def test_found_page_is_usable(site):
    assert classify(site, page(site, "found.html"), 200) is None


# -- MissAV ----------------------------------------------------------------------------------

def _unpack(html: str) -> str:
    """Run Dean Edwards' unpacker in Python, to check the fixture means what the parser says."""
    m = re.search(r"}\('(.*)',(\d+),(\d+),'([^']*)'\.split\('\|'\)", html)
    p, a, words = m.group(1).replace("\\'", "'"), int(m.group(2)), m.group(4).split("|")

    def b36(n: int) -> str:
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"
        return digits[n] if n < a else b36(n // a) + digits[n % a]

    table = {b36(i): w or b36(i) for i, w in enumerate(words)}
    return re.sub(r"\b\w+\b", lambda m: table.get(m.group(0), m.group(0)), p)


def test_missav_uuid_from_the_packed_word_list():
    html = page("missav", "found.html")
    uuid = missav.parse_uuid(html)
    assert uuid == "5e0c7a12-9b3d-4f61-8a2e-c4d9b07e1f35"
    # The reconstruction agrees with what the browser would run.
    assert f"source='{missav.playlist_url(uuid)}'" in _unpack(html)
    assert missav.playlist_url(uuid) == f"https://surrit.com/{uuid}/playlist.m3u8"
    assert missav.playlist_url(uuid, "http://127.0.0.1:9/surrit/") == f"http://127.0.0.1:9/surrit/{uuid}/playlist.m3u8"


def test_missav_meta_and_layout_changed():
    title, cover = missav.parse_meta(page("missav", "found.html"), "FXS-042")
    assert title == TITLE and cover == "https://fourhoi.com/fxs-042/cover-n.jpg"
    with pytest.raises(LayoutChanged, match="missav"):
        missav.parse_uuid(page("missav", "layout_changed.html"))
    with pytest.raises(LayoutChanged, match="UUID"):
        missav.parse_uuid("m3u8|abc|com|surrit|https|video")


def test_missav_page_order():
    assert missav.page_paths(AVID) == ["/cn/fxs-042-chinese-subtitle", "/fxs-042-chinese-subtitle",
                                       "/cn/fxs-042", "/dm13/cn/fxs-042"]
    assert missav.page_paths(parse("FXS-042-U"))[0] == "/cn/fxs-042-uncensored-leak"


# -- Jable -------------------------------------------------------------------------------------

def test_jable_page():
    url, title, cover = jable.parse_page(page("jable", "found.html"), "FXS-042")
    assert url == "https://cdn.fixture-jable.example/hls/fxs-042/fxs-042.m3u8?token=fixture-ttl"
    assert title == TITLE
    assert cover.endswith("/42042/preview.jpg")


def test_jable_double_quotes_and_h4_title_fallback():
    url, title, _ = jable.parse_page(page("jable", "found_double_quotes.html"), "FXS-042")
    assert url.endswith("fxs-042.m3u8?token=fixture-ttl")
    # <title> is just the site name there: it is stripped to nothing and h4.title is used.
    assert title == TITLE


def test_jable_layout_changed():
    with pytest.raises(LayoutChanged, match="hlsUrl"):
        jable.parse_page(page("jable", "layout_changed.html"), "FXS-042")


# -- Memo --------------------------------------------------------------------------------------

def test_memo_page_and_cdn_pattern():
    assert memo.parse_page(page("memo", "found.html"), "FXS-042") == (
        TITLE, "https://img.fixture-memo.example/cover/FXS-042.jpg")
    assert memo.page_paths(AVID) == ["/video/FXS-042", "/cn/FXS-042", "/FXS-042"]
    assert memo.playlist_url("FXS-042") == "https://video10.memojav.net/stream/FXS-042/master.m3u8"
    assert memo.is_playlist(page("memo", "master.m3u8"))
    assert not memo.is_playlist(page("memo", "not_found.html"))


def test_memo_outcomes():
    with pytest.raises(LayoutChanged, match="og:title"):
        memo.parse_page(page("memo", "layout_changed.html"), "FXS-042")
    with pytest.raises(SourceNotFound, match="FXS-043"):
        memo.parse_page(page("memo", "other_title.html"), "FXS-042")


# -- HohoJ -------------------------------------------------------------------------------------

def test_hohoj_search_takes_the_result_that_names_the_avid():
    # The first card is FXS-0421, a near miss that must not be taken.
    assert hohoj.parse_search(page("hohoj", "search.html"), "FXS-042") == "90042"
    with pytest.raises(SourceNotFound, match="0 results"):
        hohoj.parse_search(page("hohoj", "not_found.html"), "FXS-042")
    with pytest.raises(SourceNotFound, match="4 results"):
        hohoj.parse_search(page("hohoj", "search.html"), "FXS-999")


def test_hohoj_embed():
    assert hohoj.parse_embed(page("hohoj", "embed.html")) == "https://media.fixture-hohoj.example/hls/fxs-042/index.m3u8"
    with pytest.raises(LayoutChanged, match="videoSrc"):
        hohoj.parse_embed(page("hohoj", "layout_changed.html"))


# -- KanAV -------------------------------------------------------------------------------------

def test_kanav_search_and_play():
    assert kanav.parse_search(page("kanav", "search.html"), "FXS-042") == "/index.php/vod/play/id/7042/sid/1/nid/1.html"
    with pytest.raises(SourceNotFound):
        kanav.parse_search(page("kanav", "not_found.html"), "FXS-042")
    assert kanav.parse_play(page("kanav", "found.html")) == "https://v.fixture-kanav.example/20240101/fxs-042/index.m3u8"
    with pytest.raises(LayoutChanged, match='"url"'):
        kanav.parse_play(page("kanav", "layout_changed.html"))


def test_kanav_decode_is_base64_then_unquote():
    quoted = "https%3A%2F%2Fv.example%2Fa%20b%2Findex.m3u8"
    assert kanav.decode_url(base64.b64encode(quoted.encode()).decode()) == "https://v.example/a b/index.m3u8"
    # Some players drop the base64 padding.
    assert kanav.decode_url(base64.b64encode(b"https%3A%2F%2Fx.example%2F1.m3u8").decode().rstrip("=")) \
        == "https://x.example/1.m3u8"
    assert kanav.decode_url("https://x.example/plain.m3u8") == "https://x.example/plain.m3u8"
    with pytest.raises(LayoutChanged):
        kanav.decode_url("not base64 at all!")


# -- GGJav -------------------------------------------------------------------------------------

def test_ggjav_search_and_video():
    assert ggjav.parse_search(page("ggjav", "search.html"), "FXS-042") == "553042"
    with pytest.raises(SourceNotFound):
        ggjav.parse_search(page("ggjav", "not_found.html"), "FXS-042")
    # No ggjav server on this page: mmsi01 beats mmvh01, and its .mp4 gets /index.m3u8.
    assert ggjav.parse_video(page("ggjav", "found.html")) == \
        "https://mmsi01.fixture-ggjav.example/fxs-042/fxs-042.mp4/index.m3u8"
    with pytest.raises(LayoutChanged, match="var l"):
        ggjav.parse_video(page("ggjav", "layout_changed.html"))


def test_ggjav_decode_is_base64_minus_0x58():
    servers = {"mmvh01": ["https://b.example/2.m3u8"], "ggjav": "https://a.example/1.m3u8"}
    raw = json.dumps(servers).encode()
    data = base64.b64encode(bytes((b + 0x58) % 256 for b in raw)).decode()
    assert ggjav.decode_servers(data) == servers
    assert ggjav.encode_servers(servers) == data
    assert ggjav.pick_playlist(servers) == "https://a.example/1.m3u8"


def test_ggjav_server_preference_and_mp4_rule():
    pick = ggjav.pick_playlist
    assert pick({"mmvh01": ["https://v/x.m3u8"], "mmsi01": ["https://s/x.mp4"]}) == "https://s/x.mp4/index.m3u8"
    assert pick({"mmsi01": "https://s/x.mp4?t=1"}) == "https://s/x.mp4/index.m3u8?t=1"
    # .mp4 elsewhere is not HLS: skipped, not rewritten.
    assert pick({"ggjav": ["https://g/x.mp4"], "mmvh01": ["", "https://v/x.m3u8"]}) == "https://v/x.m3u8"
    assert pick({"other": ["https://o/x.m3u8"]}) == "https://o/x.m3u8"
    with pytest.raises(LayoutChanged, match="no HLS"):
        pick({"streamtape": ["https://st/e/1"]})


# -- NetFlav -----------------------------------------------------------------------------------

def test_netflav_next_data():
    url, title, cover = netflav.parse_next_data(page("netflav", "found.html"), "FXS-042")
    assert url == "https://hls.fixture-netflav.example/fxs-042/index.m3u8"
    assert title == TITLE and cover == "https://img.fixture-netflav.example/fxs-042.jpg"


def test_netflav_outcomes():
    with pytest.raises(SourceNotFound, match="no video data"):
        netflav.parse_next_data(page("netflav", "not_found.html"), "FXS-042")
    with pytest.raises(SourceNotFound, match="no HLS"):
        netflav.parse_next_data(page("netflav", "no_hls.html"), "FXS-042")
    with pytest.raises(LayoutChanged, match="__NEXT_DATA__"):
        netflav.parse_next_data(page("netflav", "layout_changed.html"), "FXS-042")


# -- AvToday -----------------------------------------------------------------------------------

def test_avtoday_search_and_nested_iframe():
    href = avtoday.parse_search(page("avtoday", "search.html"), "FXS-042")
    assert href == "/video/fxs-042-a-fictional-afternoon-walk"
    with pytest.raises(SourceNotFound):
        avtoday.parse_search(page("avtoday", "not_found.html"), "FXS-042")
    video = page("avtoday", "found.html")
    assert avtoday.find_m3u8(video) is None
    page_url = absolute(href, BASE)
    assert avtoday.parse_iframe(video, page_url, BASE) == BASE + "/embed/fxs-042"
    # The player config escapes slashes, as JSON in a script does.
    assert avtoday.find_m3u8(page("avtoday", "embed.html")) == "https://stream.fixture-avtoday.example/fxs-042/master.m3u8"


def test_avtoday_inline_and_layout_changed():
    assert avtoday.find_m3u8(page("avtoday", "found_inline.html")).endswith("/fxs-042/master.m3u8")
    changed = page("avtoday", "layout_changed.html")
    assert avtoday.find_m3u8(changed) is None and avtoday.parse_iframe(changed, BASE, BASE) is None


# -- JavBus ------------------------------------------------------------------------------------

def test_javbus_every_field():
    e = javbus.parse_entry(page("javbus", "found.html"), "FXS-042", base_url=BASE, source="busdmm",
                           page_url=BASE + "/FXS-042")
    assert e.source == "busdmm" and e.avid == "FXS-042" and e.page_url == BASE + "/FXS-042"
    assert e.title == "虛構的午後散步"  # " - JavBus" and the leading AVID stripped
    assert (e.release_date, e.runtime_min) == ("2023-04-05", 118)
    assert (e.director, e.studio, e.label, e.series) == ("範例導演", "虛構映像", "虛構唱片", "示範系列 3")
    assert e.genres == ["劇情", "溫馨", "旅行"]  # FHD, 高畫質, 單體作品, MGS bonus dropped
    # Names from the img title (the span text is truncated); the placeholder is no avatar.
    assert [(a.name, a.avatar_url) for a in e.actors] == [
        ("Aoi Fixtureberg", BASE + "/pics/actress/fa1_a.jpg"), ("Rin Nophoto-Placeholder", "")]
    assert e.cover_url == BASE + "/pics/cover/fxs042_b.jpg"  # relative href below the base URL
    assert e.samples == ["https://pics.fixture-dmm.example/digital/video/fxs042/fxs042jp-1.jpg",
                         BASE + "/pics/sample/fx42_2_full.jpg"]


def test_javbus_description_fills_missing_info():
    html = page("javbus", "found.html")
    html = re.sub(r"<p><span class=\"header\">(發行日期|長度):</span>[^<]*</p>", "", html)
    html = html.replace("<title>FXS-042 虛構的午後散步 - JavBus</title>", "<title></title>")
    html = re.sub(r"<h3>.*?</h3>", "", html)
    e = javbus.parse_entry(html, "FXS-042", base_url=BASE)
    assert (e.title, e.release_date, e.runtime_min) == ("虛構的午後散步", "2023-04-05", 118)


def test_javbus_rejects_pages_that_are_not_the_entry():
    with pytest.raises(SourceNotFound, match="FXS-043"):
        javbus.parse_entry(page("javbus", "other_avid.html"), "FXS-042", base_url=BASE)
    with pytest.raises(LayoutChanged, match="info block"):
        javbus.parse_entry(page("javbus", "layout_changed.html"), "FXS-042", base_url=BASE)
    with pytest.raises(LayoutChanged, match="no catalogue fields"):
        javbus.parse_entry(page("javbus", "empty_fields.html"), "FXS-042", base_url=BASE)
    with pytest.raises(SourceNotFound):
        javbus.parse_entry(page("javbus", "not_found.html"), "FXS-042", base_url=BASE)


def test_javbus_fc2_is_refused_without_fetching():
    # The base URL points at a closed port: a fetch would be an UpstreamError, not this.
    with pytest.raises(SourceNotFound) as ei:
        adapter("javbus").scrape(parse("FC2-PPV-1234567"))
    assert ei.value.detail == "no catalogue entry (FC2 titles are not on JavBus)"
    assert ei.value.avid == "FC2-PPV-1234567"


def test_javbus_sends_traditional_chinese():
    assert javbus.JavBusScraper.extra_headers["Accept-Language"] == "zh-TW,zh;q=0.9"


# -- the adapter base --------------------------------------------------------------------------

def test_stray_parse_errors_become_layout_changed():
    src = adapter("netflav")
    broken = '<script id="__NEXT_DATA__" type="application/json">{"props": {}}</script>'
    with pytest.raises(LayoutChanged) as ei:
        src._guard(AVID, lambda: netflav.parse_next_data(broken, "FXS-042"))
    assert ei.value.source == "netflav" and ei.value.avid == "FXS-042"
    assert "KeyError" in ei.value.detail
    # A typed outcome raised by a parser gets the AVID filled in.
    with pytest.raises(SourceNotFound) as ei:
        src._guard(AVID, lambda: netflav.parse_next_data(page("netflav", "not_found.html"), "FXS-042"))
    assert ei.value.avid == "FXS-042"


def test_urls_from_pages_are_checked():
    src = adapter("jable", allow_private=False)
    with pytest.raises(UnsafeURL):
        src.found(AVID, BASE, "http://127.0.0.1/x.m3u8")
    with pytest.raises(LayoutChanged, match="unsafe URL"):
        src._guard(AVID, lambda: src.found(AVID, BASE, "file:///etc/passwd"))
    # An unsafe cover is dropped; the playlist still counts.
    f = adapter("jable").found(AVID, BASE, "http://10.0.0.1/x.m3u8", cover_url="ftp://x/y.jpg")
    assert f.cover_url == "" and f.playlist_url == "http://10.0.0.1/x.m3u8"
    assert f.referer == BASE + "/"


def test_found_is_a_frozen_record():
    f = Found("jable", "FXS-042", "p", "u", headers={"Origin": "o"})
    with pytest.raises(AttributeError):
        f.title = "x"  # type: ignore[misc]
    assert hash(f) == hash(Found("jable", "FXS-042", "p", "u"))


def test_helpers():
    assert absolute("/a.jpg", BASE + "/") == BASE + "/a.jpg"
    assert absolute("//img.example/a.jpg", "https://x.example") == "https://img.example/a.jpg"
    assert absolute("https://o.example/a.jpg", BASE) == "https://o.example/a.jpg"
    assert absolute("b/a.jpg", BASE) == BASE + "/b/a.jpg"
    assert strip_avid("FXS-042 A title", "FXS-042") == "A title"
    assert strip_avid("[fxs042] A title", "FXS-042") == "A title"
    assert strip_avid("FXS-0421 A title", "FXS-042") == "FXS-0421 A title"
    assert mentions_avid("watch fxs-042 now", "FXS-042")
    assert not mentions_avid("AFXS-042", "FXS-042") and not mentions_avid("FXS-0420", "FXS-042")
