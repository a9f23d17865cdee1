"""An edition the user asked for by its suffix (``ABC-123-C``) is kept after resolve: by the
download's own re-resolve of a stale playlist. In-process stages on a real Redis, fixture site."""

from __future__ import annotations

from actors.registry import CHAIN
from pipeline.avid import parse
from tests.test_editions_upgrade import env  # noqa: F401 - env is a fixture


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
