"""An edition the user asked for by its suffix (``ABC-123-C``) is kept after resolve: by the
download's own re-resolve of a stale playlist, and by the periodic edition check, which must
not replace that video later with the preferred edition (a title that merely holds a less
preferred edition is still a candidate). In-process stages on a real Redis, fixture site."""

from __future__ import annotations

from actors.registry import CHAIN
from pipeline.avid import parse
from pipeline.editions import preference
from pipeline.upgrade_check import candidates
from tests.test_editions_upgrade import env, run  # noqa: F401 - env is a fixture


def test_a_download_that_waited_past_the_playlist_age_keeps_the_asked_edition(env):
    """A download asked as DEMO-002-C that waited (quiet hours, a queue) longer than
    download.playlist_max_age_s resolves its playlist again: in the asked edition, not the
    preference's."""
    from tests.test_editions_upgrade import seconds

    site, make = env
    site.add_edition("DEMO-002", "C", ["jable"])  # five seconds long: the regular one lasts four
    c = make(editions=["regular"], playlist_max_age_s=0)  # every playlist is stale at download
    job = c.jobs.submit("DEMO-002", "download", fields={"edition": "C"})
    assert CHAIN.run_inline(c, parse("DEMO-002"), job.job_id, "download")[-1] == "download"
    re_resolved = [e for e in c.events.after("0") if e.job_id == job.job_id and e.stage == "re-resolve"]
    assert re_resolved, "the download stage resolved the playlist again"
    meta = c.store.read_meta(parse("DEMO-002"))
    assert meta["edition"] == "C" and meta["source"]["edition"] == "C", meta["source"]
    assert abs(seconds(c, "DEMO-002") - 5.0) < 0.5


def test_an_asked_edition_is_no_candidate_for_the_periodic_check(env):
    site, make = env
    site.add_edition("DEMO-002", "C", ["jable"])
    c = make(editions=["regular"])  # the preference alone would take the regular release
    job = c.jobs.submit("DEMO-002", "download", fields={"edition": "C"})  # the user typed DEMO-002-C
    CHAIN.run_inline(c, parse("DEMO-002"), job.job_id, "download")
    c.jobs.finish(job.job_id, "DEMO-002", "completed")
    assert c.store.read_meta(parse("DEMO-002"))["edition"] == "C"
    # DEMO-001 came in the preference of its day (C); the preference is regular now.
    site.add_edition("DEMO-001", "C", ["jable"])
    run(make(editions=["C", "regular"]), "DEMO-001", "download")
    assert c.store.read_meta(parse("DEMO-001"))["edition"] == "C"

    assert [a.code for a in candidates(c.store, preference(["regular"]))] == ["DEMO-001"]
    # An upgrade the user asks for by hand still runs, and after it the title follows the preference.
    run(c, "DEMO-002", "upgrade")
    meta = c.store.read_meta(parse("DEMO-002"))
    assert meta["edition"] == "" and not meta.get("edition_asked")
