"""Every adapter over real HTTP against the fixture site: each scenario maps to its typed outcome,
and the registry falls through sources and catalogues as the pipeline needs."""

from __future__ import annotations

import time

import pytest

from pipeline import config as config_mod
from pipeline.avid import parse
from pipeline.errors import (AllSourcesFailed, ConfigError, LayoutChanged, SourceBlocked, SourceNotFound,
                             SourceSkipped, UpstreamError)
from pipeline.http import HttpClient
from sources.base import Found
from sources.javbus import FC2_DETAIL, GENRE_BLACKLIST
from sources.registry import (SOURCE_CLASSES, build_catalogues, build_sources, resolve_any,
                              scrape_any)
from tools.fixture_site import FixtureSite

AVID = parse("DEMO-001")
SOURCES = ["missav", "jable", "memo", "netflav", "hohoj", "kanav", "ggjav", "avtoday"]
CATALOGUES = ["javbus", "busdmm", "dmmsee"]

# scenario -> (outcome type, status, detail) as every site must report it
EXPECTED = {
    "not_found": (SourceNotFound, None, None),
    "challenge_200": (SourceBlocked, 200, "challenge page"),
    "challenge_403": (SourceBlocked, 403, "challenge page"),
    "blocked_451": (SourceBlocked, 451, None),
    "error_500": (UpstreamError, 500, None),
    "layout_changed": (LayoutChanged, None, None),
}


@pytest.fixture(scope="module")
def site():
    fx = FixtureSite.start(titles=("DEMO-001",))
    try:
        yield fx
    finally:
        fx.stop()


@pytest.fixture(scope="module")
def config(site, tmp_path_factory):
    return config_mod.load(site.write_config(tmp_path_factory.mktemp("cfg") / "c.yaml"))


@pytest.fixture()
def adapters(site, config):
    site.reset()
    made = {"sources": build_sources(config), "catalogues": build_catalogues(config)}
    yield made
    for group in made.values():
        for a in group:
            a.close()


def by_name(adapters, name):
    return next(a for group in adapters.values() for a in group if a.name == name)


def ask(adapter):
    return adapter.scrape(AVID) if hasattr(adapter, "scrape") else adapter.resolve(AVID)


# -- one adapter, one scenario ---------------------------------------------------------------

@pytest.mark.parametrize("name", SOURCES)
def test_source_found_gives_a_playlist_the_cdn_serves(site, adapters, name):
    f = by_name(adapters, name).resolve(AVID)
    assert isinstance(f, Found) and f.source == name and f.avid == "DEMO-001"
    assert f.page_url.startswith(site.site_url(name) + "/")
    with HttpClient(config_mod.HttpConfig(allow_private_urls=True)) as c:
        r = c.get(f.playlist_url, referer=f.referer)
    assert r.status == 200 and r.text.startswith("#EXTM3U"), f.playlist_url
    t = site.title("DEMO-001")
    if name in ("missav", "jable", "memo", "netflav"):  # the sites whose pages name title and cover
        assert f.title == t.title and f.cover_url == t.cover_url
    else:
        assert f.title == "" and f.cover_url == ""


def test_missav_and_memo_build_their_cdn_urls(site, adapters):
    t = site.title("DEMO-001")
    f = by_name(adapters, "missav").resolve(AVID)
    # Two 404s (the Chinese-subtitle pages) come first; the plain /cn/ page has it.
    assert f.page_url == site.site_url("missav") + "/cn/demo-001"
    assert f.playlist_url == f"{site.base_url}/surrit/{t.uuid}/playlist.m3u8"
    assert f.referer == site.site_url("missav") + "/"
    f = by_name(adapters, "memo").resolve(AVID)
    assert f.playlist_url == f"{site.base_url}/memocdn/stream/DEMO-001/master.m3u8"
    assert site.stats()["playlists"]["DEMO-001"]["master"] >= 1  # Memo checked it exists


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("name", SOURCES + ["javbus"])
def test_scenario_outcome(site, adapters, name, scenario):
    kind, status, detail = EXPECTED[scenario]
    site.set_scenario(name, scenario)
    with pytest.raises(kind) as ei:
        ask(by_name(adapters, name))
    e = ei.value
    assert type(e) is kind
    assert (e.source, e.avid) == (name, "DEMO-001")
    if status is not None:
        assert e.status == status
    if detail is not None:
        assert e.detail == detail


def test_unknown_avid_is_not_found_everywhere(adapters):
    missing = parse("DEMO-999")
    for src in adapters["sources"]:
        with pytest.raises(SourceNotFound):
            src.resolve(missing)
    for cat in adapters["catalogues"]:
        with pytest.raises(SourceNotFound):
            cat.scrape(missing)


def test_network_failure_is_upstream_error(site, adapters):
    site.set_faults(timeout_s=0.2)  # the server holds the request, then drops the connection
    site.set_scenario("jable", "timeout")
    t0 = time.monotonic()
    with pytest.raises(UpstreamError) as ei:
        by_name(adapters, "jable").resolve(AVID)
    assert ei.value.source == "jable" and ei.value.status is None
    assert time.monotonic() - t0 < 5


def test_scenario_for_one_avid_only(site, adapters):
    site.add_title("DEMO-002")
    site.set_scenario("hohoj", "layout_changed", avid="DEMO-002")
    hohoj = by_name(adapters, "hohoj")
    assert hohoj.resolve(AVID).playlist_url == site.title("DEMO-001").playlist_url
    with pytest.raises(LayoutChanged, match="videoSrc"):
        hohoj.resolve(parse("DEMO-002"))


# -- catalogues ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CATALOGUES)
def test_catalogue_entry_has_every_field(site, adapters, name):
    t = site.title("DEMO-001")
    e = by_name(adapters, name).scrape(AVID)
    assert (e.source, e.avid, e.title) == (name, "DEMO-001", t.title)
    assert e.page_url == site.site_url(name) + "/DEMO-001"
    assert (e.release_date, e.runtime_min) == (t.release_date, t.runtime_min)
    assert (e.director, e.studio, e.label, e.series) == (t.director, t.studio, t.label, t.series)
    assert e.genres == [g for g in t.genres if g not in GENRE_BLACKLIST] and len(e.genres) < len(t.genres)
    assert [a.name for a in e.actors] == [a for a, _ in t.actors]
    assert [a.avatar_url for a in e.actors] == [("" if "nowprinting" in u else u) for _, u in t.actors]
    assert e.cover_url == f"{site.site_url(name)}/pics/cover/demo-001_b.jpg"
    assert e.samples == t.samples
    with HttpClient(config_mod.HttpConfig(allow_private_urls=True)) as c:
        assert c.get(e.cover_url, referer=site.site_url(name) + "/").status == 200


def test_scrape_any_falls_through_and_warns(site, adapters):
    site.set_scenario("javbus", "challenge_403")
    site.set_scenario("busdmm", "layout_changed")
    entry, warnings = scrape_any(AVID, adapters["catalogues"])
    assert entry is not None and entry.source == "dmmsee"
    assert [(type(w), w.source) for w in warnings] == [(SourceBlocked, "javbus"), (LayoutChanged, "busdmm")]


def test_scrape_any_without_entry(site, adapters):
    site.set_scenario("*", "not_found")
    entry, warnings = scrape_any("DEMO-001", adapters["catalogues"])
    assert entry is None and [w.source for w in warnings] == CATALOGUES
    requests_before = site.stats()["requests"]
    entry, warnings = scrape_any("FC2-PPV-1234567", adapters["catalogues"])
    assert entry is None and len(warnings) == 1 and warnings[0].detail == FC2_DETAIL
    assert site.stats()["requests"] == requests_before  # FC2 never fetched


# -- the registry over every source ----------------------------------------------------------

def test_build_sources_orders_by_weight(config):
    srcs = build_sources(config)
    assert [s.name for s in srcs] == SOURCES  # missav 100, jable 90, memo 80, netflav 70, …
    assert all(s.cfg.min_interval_s == 0 for s in srcs)
    assert [c.name for c in build_catalogues(config)] == CATALOGUES


def test_build_sources_drops_inactive_and_refuses_unknown(site, tmp_path):
    path = site.write_config(tmp_path / "c.yaml", extra={"sources": {"jable": {"weight": 0},
                                                                      "memo": {"enabled": False}}})
    names = [s.name for s in build_sources(config_mod.load(path))]
    assert "jable" not in names and "memo" not in names and names[0] == "missav"
    path = site.write_config(tmp_path / "d.yaml", extra={"sources": {"pornhubz": {"base_url": "http://x", "weight": 1,
                                                                                   "enabled": False}}})
    with pytest.raises(ConfigError, match="sources.pornhubz"):
        build_sources(config_mod.load(path))
    assert set(SOURCE_CLASSES) == set(SOURCES)


def test_resolve_any_falls_back_from_a_blocked_top_source(site, adapters):
    site.set_scenario("missav", "challenge_403")
    found, outcomes = resolve_any(AVID, adapters["sources"])
    assert found.source == "jable"
    assert len(outcomes) == 1 and isinstance(outcomes[0], SourceBlocked)
    assert str(outcomes[0]) == "missav: blocked (HTTP 403, challenge page)"


def test_resolve_any_skips_without_asking(site, adapters):
    site.set_scenario("jable", "error_500")
    found, outcomes = resolve_any(AVID, adapters["sources"], skip={"missav"})
    assert found.source == "memo"
    assert [(type(o), o.source) for o in outcomes] == [(SourceSkipped, "missav"), (UpstreamError, "jable")]
    assert "missav" not in site.stats()["requests"]


def test_all_sources_failed_lists_one_line_per_source(site, adapters):
    site.set_scenario("*", "not_found")
    site.set_scenario("missav", "blocked_451")
    site.set_scenario("jable", "error_500")
    site.set_scenario("kanav", "layout_changed")
    with pytest.raises(AllSourcesFailed) as ei:
        resolve_any(AVID, adapters["sources"])
    e = ei.value
    assert e.avid == "DEMO-001"
    assert [o.source for o in e.outcomes] == SOURCES
    kinds = {o.source: type(o) for o in e.outcomes}
    assert (kinds["missav"], kinds["jable"], kinds["kanav"], kinds["hohoj"]) == (
        SourceBlocked, UpstreamError, LayoutChanged, SourceNotFound)
    lines = str(e).split(": no source has it: ")[1].split("; ")
    assert len(lines) == len(SOURCES) and all(line.startswith(n + ": ") for line, n in zip(lines, SOURCES))


def test_one_adapter_serves_many_threads(site, adapters):
    from concurrent.futures import ThreadPoolExecutor

    src = by_name(adapters, "missav")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: src.resolve(AVID).playlist_url, range(8)))
    assert len(set(results)) == 1
    src.close()  # closed clients are replaced on the next request
    assert src.resolve(AVID).playlist_url == results[0]
