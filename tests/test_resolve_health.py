"""The resolve step of ``sources``: back-off skips, the user's preferred source first, and every
outcome recorded in the shared source health, over real HTTP (fixture site) on a real Redis."""

from __future__ import annotations

import pytest

from pipeline import config as config_mod
from pipeline.avid import parse
from pipeline.errors import AllSourcesFailed
from pipeline.source_health import SourceHealth
from sources.registry import build_sources, resolve_with_health, source_record
from tools.fixture_site import FixtureSite

AVID = parse("DEMO-001")


@pytest.fixture(scope="module")
def site():
    with FixtureSite.start(titles=("DEMO-001",)) as fx:
        yield fx


@pytest.fixture()
def sources(site, tmp_path):
    site.reset()
    made = build_sources(config_mod.load(site.write_config(tmp_path / "c.yaml")))
    yield made
    for a in made:
        a.close()


def test_outcomes_are_recorded_and_a_source_in_backoff_is_not_asked(site, sources, r):
    health = SourceHealth(r)
    site.set_scenario("missav", "challenge_403")
    for _ in range(2):  # the second failure in a row puts missav in back-off
        found, outcomes = resolve_with_health(AVID, sources, health)
        assert found.source == "jable" and [o.source for o in outcomes] == ["missav"]
    assert health.get("missav")["state"] == "backoff"
    assert health.get("jable")["state"] == "ok" and health.get("jable")["last_outcome"] == "found"
    asked = site.stats()["requests"].get("missav", 0)

    found, outcomes = resolve_with_health(AVID, sources, health)
    assert found.source == "jable"
    assert [(o.source, o.outcome) for o in outcomes] == [("missav", "skipped")]
    assert site.stats()["requests"].get("missav", 0) == asked  # not asked
    assert health.get("missav")["failures"] == 2  # a skip is not an outcome


def test_the_preferred_source_is_asked_first(sources, r):
    found, outcomes = resolve_with_health(AVID, sources, SourceHealth(r), prefer="memo")
    assert found.source == "memo" and outcomes == []
    rec = source_record(found, now=123.0)
    assert rec["name"] == "memo" and rec["resolved_at"] == 123.0 and "source" not in rec


def test_when_all_are_in_backoff_all_are_asked_and_failures_recorded(site, sources, r):
    health = SourceHealth(r)
    for s in sources:
        health.record(s.name, "blocked")
        health.record(s.name, "blocked")
    site.set_scenario("*", "error_500")
    with pytest.raises(AllSourcesFailed) as ei:
        resolve_with_health(AVID, sources, health)
    assert {o.outcome for o in ei.value.outcomes} == {"upstream error"}  # asked, not skipped
    assert all(health.get(s.name)["failures"] == 3 for s in sources)
