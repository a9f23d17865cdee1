"""Editions across the sources, over real HTTP (fixture site) on a real Redis: the preference
list decides, each source is asked only for editions it has pages for and that would be
better, and the offers say what each source was asked and had."""

from __future__ import annotations

import pytest

from pipeline import config as config_mod
from pipeline.avid import parse
from pipeline.editions import REGULAR, better, label, preference, rank
from pipeline.errors import ConfigError, SourceNotFound
from pipeline.source_health import SourceHealth
from sources import jable, missav
from sources.editions import resolve_editions, seek_better
from sources.registry import build_sources
from tools.fixture_site import FixtureSite

PLAIN, BOTH, LEAK = parse("DEMO-001"), parse("DEMO-002"), parse("DEMO-003")


@pytest.fixture(scope="module")
def site():
    with FixtureSite.start(titles=("DEMO-001", "DEMO-002", "DEMO-003"), stream_kind="clear",
                           duration_s=4.0) as fx:
        fx.add_edition("DEMO-002", "C", ["jable"])  # C only on the second source
        fx.add_edition("DEMO-003", "U", ["missav"])
        fx.add_edition("DEMO-003", "C", ["missav"])
        yield fx


def build(site, tmp_path, editions):
    cfg = config_mod.load(site.write_config(tmp_path / "c.yaml", extra={"download": {"editions": editions}}))
    return cfg, build_sources(cfg)


@pytest.fixture()
def made(site, tmp_path):
    site.reset()
    built = []

    def make(editions):
        cfg, sources = build(site, tmp_path, editions)
        built.extend(sources)
        return preference(cfg.download.editions), sources
    yield make
    for s in built:
        s.close()


def test_preference_validation_names_the_accepted_form(tmp_path):
    assert preference(["C", "uc", "Regular"]) == ("C", "UC", REGULAR)
    assert label(REGULAR) == "regular" and label("C") == "C"
    for bad in ([], ["C", "C"], ["X"], ["CD1"], [5]):
        with pytest.raises(ConfigError) as e:
            preference(bad)
        assert "download.editions" in str(e.value) and "regular" in str(e.value)
    p = tmp_path / "c.yaml"
    p.write_text("download:\n  editions: [C, HD]\n")
    with pytest.raises(ConfigError, match="C, UC, U and regular"):
        config_mod.load(p, {})
    p.write_text("download:\n  upgrade_check_interval_s: -1\n")
    with pytest.raises(ConfigError, match="upgrade_check_interval_s"):
        config_mod.load(p, {})
    assert config_mod.load(None, {}).download.upgrade_check_interval_s == 0  # off by default


def test_rank_and_better():
    prefs = ("C", "UC", REGULAR)
    assert rank("C", prefs) == 0 and rank("U", prefs) is None
    assert better("C", REGULAR, prefs) and not better(REGULAR, "C", prefs)
    assert not better("C", "C", prefs) and not better("U", REGULAR, prefs)
    assert better(REGULAR, None, prefs) and better(REGULAR, "U", prefs)  # U no longer wanted


def test_edition_page_urls_follow_the_field_notes():
    assert missav.edition_paths(PLAIN, "C") == ["/cn/demo-001-chinese-subtitle", "/demo-001-chinese-subtitle"]
    assert missav.edition_paths(PLAIN, "U") == ["/cn/demo-001-uncensored-leak"]
    assert jable.page_path(PLAIN, "C") == "/videos/demo-001-c/"
    assert jable.page_path(PLAIN) == "/videos/demo-001/"


def test_a_better_edition_on_a_lower_weight_source_wins(site, made, r):
    prefs, sources = made(["C", "regular"])
    found, outcomes, offers = resolve_editions(BOTH, sources, SourceHealth(r), prefs)
    assert (found.source, found.edition) == ("jable", "C")
    assert found.playlist_url.endswith("/cdn/DEMO-002-C/master.m3u8") and found.page_url.endswith("/demo-002-c/")
    assert outcomes == []
    assert offers == [
        {"source": "missav", "asked": ["C", "regular"], "offered": ["regular"], "outcome": "found"},
        {"source": "jable", "asked": ["C"], "offered": ["C"], "outcome": "found"},
    ]
    # Sources without edition pages were not asked: they could not do better.
    assert "memo" not in site.stats()["requests"]


def test_without_a_better_edition_the_first_source_stays_and_others_are_asked_once(site, made, r):
    prefs, sources = made(["C", "regular"])
    found, _, offers = resolve_editions(PLAIN, sources, SourceHealth(r), prefs)
    assert (found.source, found.edition) == ("missav", REGULAR)
    assert [(o["source"], o["outcome"]) for o in offers] == [("missav", "found"), ("jable", "not found")]
    assert site.stats()["requests"]["jable"] == 1 and "memo" not in site.stats()["requests"]


def test_the_most_preferred_edition_stops_the_search(site, made, r):
    prefs, sources = made(["U", "C", "regular"])
    found, _, offers = resolve_editions(LEAK, sources, SourceHealth(r), prefs)
    assert (found.source, found.edition) == ("missav", "U")
    assert found.page_url.endswith("/cn/demo-003-uncensored-leak")
    assert [o["source"] for o in offers] == ["missav"] and "jable" not in site.stats()["requests"]


def test_an_edition_not_in_the_list_is_never_taken(site, made, r):
    prefs, sources = made(["regular"])
    found, _, offers = resolve_editions(LEAK, sources, SourceHealth(r), prefs)
    assert (found.source, found.edition) == ("missav", REGULAR)
    assert offers == [{"source": "missav", "asked": ["regular"], "offered": ["regular"], "outcome": "found"}]
    assert site.stats()["requests"]["missav"] == 1  # only the regular page


def test_a_named_source_is_taken_as_it_is(site, made, r):
    prefs, sources = made(["C", "regular"])
    found, _, offers = resolve_editions(BOTH, sources, SourceHealth(r), prefs, prefer="memo")
    assert (found.source, found.edition) == ("memo", REGULAR) and len(offers) == 1


def test_seek_better_for_an_upgrade(site, made, r):
    prefs, sources = made(["C", "regular"])
    health = SourceHealth(r)
    got, offers = seek_better(BOTH, sources, health, prefs, than=REGULAR)
    assert (got.source, got.edition) == ("jable", "C")
    assert [(o["source"], o["asked"], o["outcome"]) for o in offers] == [("missav", ["C"], "not found"),
                                                                          ("jable", ["C"], "found")]
    got, offers = seek_better(BOTH, sources, health, prefs, than="C")  # already the best
    assert got is None and offers == []
    # A block while looking is recorded in source health; a missing edition is not.
    site.set_scenario("jable", "challenge_403")
    got, offers = seek_better(PLAIN, sources, health, prefs, than=REGULAR)
    assert got is None and [o["outcome"] for o in offers] == ["not found", "blocked"]
    assert health.get("jable")["last_outcome"] == "blocked"
    assert health.get("missav")["last_outcome"] == ""  # its "not found" was about one edition


def test_a_source_asked_for_editions_it_has_no_pages_for_says_so_without_a_request(site, made):
    _, sources = made(["C"])
    memo = next(s for s in sources if s.name == "memo")
    with pytest.raises(SourceNotFound, match="serves none of the editions"):
        memo.resolve(PLAIN)
    assert "memo" not in site.stats()["requests"]


def test_sources_without_an_acceptable_edition_are_not_asked(site, made, r):
    from pipeline.errors import AllSourcesFailed

    prefs, sources = made(["U"])  # only MissAV has leak pages
    health = SourceHealth(r)
    found, outcomes, offers = resolve_editions(LEAK, sources, health, prefs)
    assert (found.source, found.edition) == ("missav", "U") and outcomes == []
    with pytest.raises(AllSourcesFailed) as e:
        resolve_editions(PLAIN, sources, health, prefs)
    assert [o.source for o in e.value.outcomes] == ["missav"]  # the one source that has U pages
    prefs, sources = made(["UC"])  # no adapter knows a UC page
    with pytest.raises(AllSourcesFailed) as e:
        resolve_editions(PLAIN, sources, health, prefs)
    assert len(e.value.outcomes) == len(sources) and "none of download.editions" in str(e.value)
    assert set(site.stats()["requests"]) == {"missav"}
    assert health.get("jable")["last_outcome"] == ""


def test_the_fixture_control_api_adds_editions(site):
    import urllib.request

    from tests.e2e_helpers import http

    url = site.base_url + "/_control"
    # DEMO-002 in U is wanted by no other test here.
    code, body = http("POST", url, {"editions": [{"avid": "demo-002", "edition": "U", "sites": ["missav"]}]})
    assert code == 200 and body["editions"]["missav"]["DEMO-002"] == ["U"]
    for bad in ({"avid": "NOPE-001", "edition": "C", "sites": ["jable"]},
                {"avid": "DEMO-002", "edition": "CD1", "sites": ["jable"]}, {"avid": "DEMO-002"}):
        code, body = http("POST", url, {"editions": [bad]})
        assert code == 400 and "editions: expected" in body["error"]
    with urllib.request.urlopen(site.site_url("missav") + "/cn/demo-002-uncensored-leak", timeout=10) as page:
        assert page.status == 200 and "m3u8" in page.read().decode()


def test_a_source_the_user_blocked_is_not_asked_for_any_edition(site, made, r):
    prefs, sources = made(["C", "regular"])
    health = SourceHealth(r)
    found, outcomes, offers = resolve_editions(BOTH, sources, health, prefs, blocked={"jable"})
    assert (found.source, found.edition) == ("missav", REGULAR)
    assert offers[0] == {"source": "jable", "asked": [], "offered": [], "outcome": "blocked by the user"}
    assert [o["source"] for o in offers[1:]] == ["missav"] and "jable" not in site.stats()["requests"]
    got, offers = seek_better(BOTH, sources, health, prefs, than=REGULAR, blocked={"jable"})
    assert got is None and [o["source"] for o in offers] == ["missav"]
