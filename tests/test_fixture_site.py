"""The fixture site over real HTTP: pages, scenarios, CDN faults, stats, config, CLI."""

from __future__ import annotations

import concurrent.futures
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from parsel import Selector
from PIL import Image

from tools.fixture_site import FixtureSite, sites
from tools.fixture_site.media import FFMPEG_INPUT_ARGS, ffmpeg_exe
from tools.fixture_site.server import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def get(url: str, *, timeout: float = 10, headers: dict[str, str] | None = None,
        method: str = "GET", data: bytes | None = None) -> tuple[int, bytes, Any]:
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def post_json(url: str, body: Any) -> tuple[int, Any]:
    status, data, _ = get(url, method="POST", data=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
    return status, json.loads(data)


@pytest.fixture(scope="module")
def fx() -> Iterator[FixtureSite]:
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"))
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "fx" in request.fixturenames:
        request.getfixturevalue("fx").reset()


# -- sites ------------------------------------------------------------------------------


def test_every_site_module_loads_and_mine_are_there(fx: FixtureSite) -> None:
    assert sites.LOAD_ERRORS == {}, sites.LOAD_ERRORS
    kinds = {n: m.KIND for n, m in fx.state.sites.items()}
    assert kinds["jable"] == "source"
    assert all(kinds[n] == "catalogue" for n in ("javbus", "busdmm", "dmmsee"))


def test_jable_page(fx: FixtureSite) -> None:
    t = fx.title("DEMO-001")
    status, body, _ = get(fx.site_url("jable") + "/videos/demo-001/")
    sel = Selector(text=body.decode())
    assert status == 200
    assert sel.css("title::text").get() == f"DEMO-001 {t.title} - Jable.TV"
    assert sel.css("h4.title::text").get() == f"DEMO-001 {t.title}"
    assert sel.css('meta[property="og:image"]::attr(content)').get() == t.cover_url
    assert f"var hlsUrl = '{t.playlist_url}';" in body.decode()
    assert get(fx.site_url("jable") + "/videos/nope-999/")[0] == 404

    fx.set_scenario("jable", "not_found")
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 404
    fx.set_scenario("jable", "layout_changed")
    status, body, _ = get(fx.site_url("jable") + "/videos/demo-001/")
    assert status == 200 and "hlsUrl" not in body.decode()


@pytest.mark.parametrize("name", ["javbus", "busdmm", "dmmsee"])
def test_javbus_family_page(fx: FixtureSite, name: str) -> None:
    t = fx.title("DEMO-002")
    status, body, _ = get(fx.site_url(name) + "/DEMO-002", headers={"Accept-Language": "zh-TW,zh;q=0.9"})
    assert status == 200
    sel = Selector(text=body.decode())
    assert sel.css("title::text").get() == f"DEMO-002 {t.title} - JavBus"
    desc = sel.css('meta[name="description"]::attr(content)').get()
    assert f"【發行日期】{t.release_date}" in desc and f"【長度】{t.runtime_min}分鐘" in desc
    assert f"(DEMO-002){t.title}" in desc
    headers = sel.css("span.header::text").getall()
    for label in ("發行日期:", "長度:", "導演:", "製作商:", "發行商:", "系列:"):
        assert label in headers
    assert sel.xpath('//span[@class="header"][.="導演:"]/following-sibling::a/text()').get() == t.director
    assert sel.xpath('//span[@class="header"][.="系列:"]/following-sibling::a/text()').get() == t.series
    genres = sel.css("span.genre label a::text").getall()
    assert genres == t.genres and {"高畫質", "單體作品", "FHD", "DMM獨家"} & set(genres)
    href = sel.css("a.bigImage::attr(href)").get()
    assert href.startswith("/") and "://" not in href
    # The relative href works both as root-relative and as base_url + href.
    for url in (fx.base_url + href, fx.site_url(name) + href):
        status, img, h = get(url)
        assert status == 200 and h["Content-Type"] == "image/jpeg" and img[:2] == b"\xff\xd8"
    names = sel.css("a.avatar-box img::attr(title)").getall()
    assert names == [a for a, _ in t.actors]
    spans = sel.css("a.avatar-box span::text").getall()
    assert any(s != n and s.endswith("...") for s, n in zip(spans, names))
    assert sum("nowprinting.gif" in s for s in sel.css("a.avatar-box img::attr(src)").getall()) == 1
    assert sel.css("a.sample-box::attr(href)").getall() == t.samples

    assert get(fx.site_url(name) + "/NOPE-999")[0] == 404
    fx.set_scenario(name, "not_found")
    assert get(fx.site_url(name) + "/DEMO-002")[0] == 404
    fx.set_scenario(name, "layout_changed")
    status, body, _ = get(fx.site_url(name) + "/DEMO-002")
    assert status == 200 and b"DEMO-002" not in body
    assert Selector(text=body.decode()).css("span.header").getall() == []


def test_unknown_site_is_404(fx: FixtureSite) -> None:
    assert get(fx.site_url("no-such-site") + "/x")[0] == 404


# -- scenarios --------------------------------------------------------------------------

CHALLENGE_MARKERS = (b"Just a moment...", b"challenge-platform", b"cf-chl")


@pytest.mark.parametrize("scenario,status", [("challenge_200", 200), ("challenge_403", 403),
                                             ("blocked_451", 451), ("error_500", 500)])
def test_server_side_scenarios(fx: FixtureSite, scenario: str, status: int) -> None:
    fx.set_scenario("javbus", scenario)
    got, body, headers = get(fx.site_url("javbus") + "/DEMO-001")
    assert got == status
    is_challenge = scenario.startswith("challenge")
    assert all(m in body for m in CHALLENGE_MARKERS) == is_challenge
    if is_challenge:
        assert headers["cf-mitigated"] == "challenge"
    # Other sites are unaffected.
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 200


def test_timeout_scenario_holds_the_request(fx: FixtureSite) -> None:
    fx.set_scenario("jable", "timeout")
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        get(fx.site_url("jable") + "/videos/demo-001/", timeout=1.0)
    assert time.monotonic() - t0 >= 0.9
    fx.set_faults(timeout_s=0.3)  # after timeout_s the connection closes without a reply
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        get(fx.site_url("jable") + "/videos/demo-001/", timeout=5)


def test_scenario_per_avid_and_wildcard(fx: FixtureSite) -> None:
    fx.set_scenario("jable", "not_found", avid="DEMO-002")
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 200
    assert get(fx.site_url("jable") + "/videos/demo-002/")[0] == 404
    assert get(fx.site_url("jable") + "/search/demo-002/")[0] == 200  # not_found is the page's own business
    fx.set_scenario("*", "blocked_451")
    assert get(fx.site_url("javbus") + "/DEMO-001")[0] == 451
    assert get(fx.site_url("jable") + "/videos/demo-002/")[0] == 404  # site:AVID wins
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 451
    fx.set_scenario("*", None)
    assert get(fx.site_url("javbus") + "/DEMO-001")[0] == 200
    with pytest.raises(ValueError):
        fx.set_scenario("jable", "exploded")


def test_control_api_over_http(fx: FixtureSite) -> None:
    status, ctl = post_json(fx.base_url + "/_control", {
        "scenario": {"jable": "challenge_403", "javbus:demo-001": "error_500"},
        "faults": {"error_rate": 0.25, "seed": 9}})
    assert status == 200
    assert ctl["scenario"] == {"jable": "challenge_403", "javbus:DEMO-001": "error_500"}
    assert ctl["faults"]["error_rate"] == 0.25 and ctl["faults"]["seed"] == 9
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 403
    assert get(fx.site_url("javbus") + "/DEMO-001")[0] == 500
    assert get(fx.site_url("javbus") + "/DEMO-002")[0] == 200
    assert json.loads(get(fx.base_url + "/_control")[1])["scenario"]["jable"] == "challenge_403"
    assert post_json(fx.base_url + "/_control", {"scenario": {"jable": "bogus"}})[0] == 400
    assert post_json(fx.base_url + "/_control", {"faults": {"nonsense": 1}})[0] == 400
    assert post_json(fx.base_url + "/_control", {"colour": "red"})[0] == 400
    status, ctl = post_json(fx.base_url + "/_control/reset", {})
    assert status == 200 and ctl["scenario"] == {} and ctl["faults"]["error_rate"] == 0.0
    assert set(SCENARIOS) >= {"found", "timeout"}


def test_titles_added_through_control(fx: FixtureSite) -> None:
    status, ctl = post_json(fx.base_url + "/_control", {"titles": ["DEMO-003"]})
    assert status == 200 and "DEMO-003" in ctl["titles"]
    assert get(fx.site_url("javbus") + "/DEMO-003")[0] == 200
    assert get(fx.base_url + "/cdn/DEMO-003/master.m3u8")[0] == 200


# -- CDN --------------------------------------------------------------------------------


def test_master_and_media_playlists(fx: FixtureSite) -> None:
    status, master, h = get(fx.base_url + "/cdn/DEMO-001/master.m3u8")
    text = master.decode()
    assert status == 200 and h["Content-Type"] == "application/vnd.apple.mpegurl"
    bands = [int(line.split("BANDWIDTH=")[1].split(",")[0]) for line in text.splitlines()
             if line.startswith("#EXT-X-STREAM-INF")]
    assert len(bands) == 2 and bands[0] < bands[1]
    assert "v0/index.m3u8" in text and "v1/index.m3u8" in text and "://" not in text
    media = get(fx.base_url + "/cdn/DEMO-001/v1/index.m3u8")[1].decode()
    assert 'URI="key.bin"' in media and "seg0.ts" in media and "://" not in media
    stream = fx.stream("DEMO-001")
    assert get(fx.base_url + "/cdn/DEMO-001/v1/key.bin")[1] == stream.key
    seg = get(fx.base_url + "/cdn/DEMO-001/v1/seg0.ts")[1]
    assert seg == (stream.dir / "seg0.ts").read_bytes()
    assert get(fx.base_url + "/cdn/NOPE-001/master.m3u8")[0] == 404
    assert get(fx.base_url + "/cdn/DEMO-001/../../etc/passwd")[0] == 404
    assert get(fx.base_url + "/cdn/DEMO-001/stream.json")[0] == 404


def test_missav_and_memo_cdn_patterns(fx: FixtureSite) -> None:
    t = fx.title("DEMO-002")
    master = get(fx.base_url + "/cdn/DEMO-002/master.m3u8")[1]
    status, surrit, _ = get(f"{fx.base_url}/surrit/{t.uuid}/playlist.m3u8")
    assert status == 200 and surrit == master
    assert get(f"{fx.base_url}/surrit/{t.uuid}/v1/seg1.ts")[0] == 200
    assert get(f"{fx.base_url}/surrit/00000000-0000-0000-0000-000000000000/playlist.m3u8")[0] == 404
    status, memo, _ = get(f"{fx.base_url}/memocdn/stream/DEMO-002/master.m3u8")
    assert status == 200 and memo == master
    assert get(f"{fx.base_url}/memocdn/stream/NOPE-001/master.m3u8")[0] == 404
    assert t.uuid != fx.title("DEMO-001").uuid


def test_the_served_stream_decodes_over_http(fx: FixtureSite) -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", *FFMPEG_INPUT_ARGS,
                           "-i", fx.base_url + "/cdn/DEMO-001/master.m3u8", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    st = fx.stats()
    assert st["segment_requests"]["DEMO-001"] >= fx.stream("DEMO-001").segments
    assert st["keys"]["DEMO-001"] >= 1


def test_absolute_uris_knob(fx: FixtureSite) -> None:
    fx.set_faults(absolute_uris=True)
    media = get(fx.base_url + "/memocdn/stream/DEMO-001/v1/index.m3u8")[1].decode()
    base = fx.base_url + "/memocdn/stream/DEMO-001/v1/"
    assert f'URI="{base}key.bin"' in media and f"{base}seg0.ts" in media


def test_range_requests(fx: FixtureSite) -> None:
    status, body, h = get(fx.base_url + "/cdn/DEMO-001/seg0.ts", headers={"Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100 and h["Content-Range"].startswith("bytes 0-99/")
    assert get(fx.base_url + "/cdn/DEMO-001/seg0.ts", headers={"Range": "bytes=99999999-"})[0] == 416


def test_byterange_stream_counts_ranges_as_segments(fx: FixtureSite) -> None:
    fx.add_title("BYTE-001", stream_kind="byterange")
    s = fx.stream("BYTE-001")
    off, length = s.byteranges[2]
    status, body, _ = get(fx.base_url + "/cdn/BYTE-001/v1/index.ts",
                          headers={"Range": f"bytes={off}-{off + length - 1}"})
    assert status == 206 and body[0] == 0x47 and len(body) == length
    assert fx.stats()["segments"]["BYTE-001"] == {"2": 1}


# -- faults -----------------------------------------------------------------------------


def seg_url(fx: FixtureSite, i: int, avid: str = "DEMO-001") -> str:
    return f"{fx.base_url}/cdn/{avid}/v1/seg{i}.ts"


def test_error_rate(fx: FixtureSite) -> None:
    fx.set_faults(error_rate=1.0)
    assert get(seg_url(fx, 0))[0] == 500
    assert get(fx.base_url + "/cdn/DEMO-001/v1/index.m3u8")[0] == 200  # segments only
    fx.reset()  # attempt numbers restart, so the same decisions follow
    fx.set_faults(error_rate=0.5, seed=3)
    first = [get(seg_url(fx, i))[0] for i in range(6) for _ in range(3)]
    assert {500, 200} <= set(first)
    fx.reset()
    fx.set_faults(error_rate=0.5, seed=3)
    assert [get(seg_url(fx, i))[0] for i in range(6) for _ in range(3)] == first  # reproducible


def test_fail_segments(fx: FixtureSite) -> None:
    fx.set_faults(fail_segments=[1])
    assert [get(seg_url(fx, 1))[0] for _ in range(4)] == [500] * 4
    assert get(seg_url(fx, 0))[0] == 200 and get(seg_url(fx, 2))[0] == 200
    assert fx.stats()["segments"]["DEMO-001"]["1"] == 4


def test_truncate_rate(fx: FixtureSite) -> None:
    fx.set_faults(truncate_rate=1.0)
    size = (fx.stream("DEMO-001").dir / "seg0.ts").stat().st_size
    with pytest.raises(http.client.IncompleteRead) as e:
        get(seg_url(fx, 0))
    assert 0 < len(e.value.partial) < size and e.value.expected == size - len(e.value.partial)


def test_stall(fx: FixtureSite) -> None:
    fx.set_faults(stall_rate=1.0, stall_s=1.0)
    t0 = time.monotonic()
    status, body, _ = get(seg_url(fx, 0))
    assert status == 200 and len(body) == (fx.stream("DEMO-001").dir / "seg0.ts").stat().st_size
    assert time.monotonic() - t0 >= 1.0
    # A client whose read timeout is shorter than the stall gives up.
    with pytest.raises((TimeoutError, OSError)):
        get(seg_url(fx, 1), timeout=0.4)


def test_bandwidth_cap(fx: FixtureSite) -> None:
    size = (fx.stream("DEMO-001").dir / "seg0.ts").stat().st_size
    rate = size * 2  # half a second per segment
    fx.set_faults(bandwidth_bytes_per_s=rate)
    t0 = time.monotonic()
    status, body, _ = get(seg_url(fx, 0))
    elapsed = time.monotonic() - t0
    assert status == 200 and len(body) == size
    assert 0.4 <= elapsed < 2.0


def test_latency(fx: FixtureSite) -> None:
    fx.set_faults(latency_ms=400)
    t0 = time.monotonic()
    assert get(seg_url(fx, 0))[0] == 200
    assert time.monotonic() - t0 >= 0.4


def test_outage(fx: FixtureSite) -> None:
    fx.set_faults(outage_s=0.8)
    assert get(fx.base_url + "/cdn/DEMO-001/master.m3u8")[0] == 503
    assert get(seg_url(fx, 0))[0] == 503
    assert get(fx.site_url("jable") + "/videos/demo-001/")[0] == 200  # the CDN only
    time.sleep(0.9)
    assert get(seg_url(fx, 0))[0] == 200


# -- stats, images, concurrency ---------------------------------------------------------


def test_stats_count_requests(fx: FixtureSite) -> None:
    get(fx.site_url("jable") + "/videos/demo-001/")
    get(fx.site_url("javbus") + "/DEMO-001")
    get(fx.site_url("javbus") + "/DEMO-002")
    get(fx.base_url + "/cdn/DEMO-001/master.m3u8")
    get(fx.base_url + "/cdn/DEMO-001/v1/index.m3u8")
    for i in (0, 0, 3):
        get(seg_url(fx, i))
    st = json.loads(get(fx.base_url + "/_stats")[1])
    assert st["requests"]["jable"] == 1 and st["requests"]["javbus"] == 2 and st["requests"]["cdn"] == 5
    assert st["segments"]["DEMO-001"] == {"0": 2, "3": 1}
    assert st["segment_requests"]["DEMO-001"] == 3
    assert st["playlists"]["DEMO-001"] == {"master": 1, "v1": 1}
    seg_bytes = 2 * (fx.stream("DEMO-001").dir / "seg0.ts").stat().st_size
    assert st["bytes_sent_by"]["cdn"] > seg_bytes and st["bytes_sent"] >= st["bytes_sent_by"]["cdn"]
    assert st["status"]["200"] == 8


def test_images(fx: FixtureSite) -> None:
    status, data, h = get(fx.title("DEMO-001").cover_url)
    assert status == 200 and h["Content-Type"] == "image/jpeg"
    img = Image.open(io.BytesIO(data)).convert("RGB")
    assert img.size == (800, 538)
    poster_w = 538 * 565 // 800
    left = img.crop((0, 0, 800 - poster_w, 538)).resize((1, 1)).getpixel((0, 0))
    right = img.crop((800 - poster_w, 0, 800, 538)).resize((1, 1)).getpixel((0, 0))
    assert sum(abs(a - b) for a, b in zip(left, right)) > 60
    for url in fx.title("DEMO-001").samples + [a for _, a in fx.title("DEMO-001").actors]:
        status, data, _ = get(url)
        assert status == 200 and Image.open(io.BytesIO(data)).size[0] > 0
    status, data, h = get(fx.base_url + "/img/nowprinting.gif")
    assert status == 200 and data[:3] == b"GIF"
    assert get(fx.base_url + "/img/NOPE-001/cover.jpg")[0] == 404


def test_32_concurrent_keepalive_connections(fx: FixtureSite) -> None:
    stream = fx.stream("DEMO-001")
    sizes = [(stream.dir / n).stat().st_size for n in stream.segment_files]

    def worker(k: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", fx.port, timeout=10)
        try:
            total = 0
            for j in range(stream.segments):
                i = (k + j) % stream.segments
                conn.request("GET", f"/cdn/DEMO-001/v1/{stream.segment_files[i]}")
                r = conn.getresponse()
                body = r.read()
                assert r.status == 200 and len(body) == sizes[i]
                total += len(body)
            return total
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        totals = list(ex.map(worker, range(32)))
    assert totals == [sum(sizes)] * 32
    assert fx.stats()["segment_requests"]["DEMO-001"] == 32 * stream.segments


def test_stop_wakes_held_requests_and_closes_connections() -> None:
    site = FixtureSite.start(titles=("DEMO-001",))
    site.set_scenario("jable", "timeout")
    errors: list[BaseException] = []

    def held() -> None:
        try:
            get(site.site_url("jable") + "/videos/demo-001/", timeout=30)
        except BaseException as e:  # the connection is cut: that is the point
            errors.append(e)

    t = threading.Thread(target=held)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    site.stop()
    t.join(5)
    assert not t.is_alive() and errors and time.monotonic() - t0 < 5
    site.stop()  # twice is fine


# -- config and CLI ---------------------------------------------------------------------


def test_written_config_loads(fx: FixtureSite, tmp_path: Path) -> None:
    from pipeline import config

    path = fx.write_config(tmp_path / "nassav.yaml", data_dir=tmp_path / "data",
                           redis_url="redis://127.0.0.1:6399/0",
                           extra={"download": {"concurrency": 4}, "sources": {"kanav": {"weight": 0}}})
    cfg = config.load(path)
    assert cfg.data_dir == str(tmp_path / "data") and cfg.redis_url == "redis://127.0.0.1:6399/0"
    assert cfg.http.allow_private_urls and cfg.http.timeout_s == 10 and cfg.http.retries == 1
    assert cfg.download.concurrency == 4
    for table, defaults in ((cfg.sources, config.DEFAULT_SOURCES), (cfg.catalogues, config.DEFAULT_CATALOGUES)):
        assert set(table) == set(defaults)
        for name, sc in table.items():
            assert sc.base_url == fx.site_url(name) and sc.min_interval_s == 0
            assert sc.weight == (0 if name == "kanav" else defaults[name].weight)
    assert cfg.sources["missav"].cdn_url == fx.base_url + "/surrit"
    assert cfg.sources["memo"].cdn_url == fx.base_url + "/memocdn"
    assert config.load(fx.write_config(tmp_path / "bare.yaml")).data_dir == "resource"


def test_cli_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "tools.fixture_site", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--stream-kind" in proc.stdout and "--write-config" in proc.stdout


def test_cli_serves_and_exits_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "nassav.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "tools.fixture_site", "--port", "0", "--titles", "2",
                             "--write-config", str(cfg), "--data-dir", str(tmp_path / "data")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = _readline(proc, 30)
        assert line.startswith("fixture site listening on http://127.0.0.1:"), line
        base = line.split(" on ", 1)[1].strip()
        assert get(base + "/site/jable/videos/demo-002/")[0] == 200
        assert get(base + "/cdn/DEMO-002/master.m3u8")[0] == 200
        from pipeline import config

        assert config.load(cfg).sources["jable"].base_url == base + "/site/jable"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout_s)
    if not out:
        raise AssertionError(f"no start-up line within {timeout_s} s")
    return out[0]


@pytest.mark.parametrize("length,rate", [(1_000_000, 2_000_000), (1, 1000), (65536, 2_000_000),
                                         (1_048_577, 2_000_000), (5000, 100)])
def test_throttle_paces_a_body_at_exactly_the_rate(length, rate):
    """The last chunk is due at length / rate: no sleeping a whole chunk past the body's end."""
    from tools.fixture_site.server import pace

    plan = pace(length, rate)
    assert plan[0][0] == 0 and plan[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))  # contiguous, nothing sent twice
    assert plan[-1][2] == pytest.approx(length / rate)
    assert all(end / rate == pytest.approx(due) for _, end, due in plan)
