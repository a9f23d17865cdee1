"""An edition asked for by its suffix (``ABC-123-C``, ``abc-123-uc``): the submit routes carry it
on the job (and in the ``queued`` event, so the history shows it), and resolve takes that edition
whatever ``download.editions`` says, or fails naming it; it never takes another one instead.
In-process stages on a real Redis against the fixture site (real HLS streams made by ffmpeg)."""

from __future__ import annotations

import pytest

from actors.registry import CHAIN
from pipeline.avid import parse
from pipeline.errors import EditionNotFound
from pipeline.events import Events
from pipeline.jobs import Jobs
from pipeline.redis_client import connect
from tests.api_helpers import gateway, put_resource, settle
from tests.test_editions_upgrade import env, finished, run, seconds  # noqa: F401 - env is a fixture


def submit(c, code: str, kind: str, edition: str):
    job = c.jobs.submit(code, kind, fields={"edition": edition})
    assert job.accepted
    return job.job_id


def test_the_asked_edition_beats_the_preference(env):
    site, make = env
    site.add_edition("DEMO-002", "C", ["jable"])  # five seconds long: the regular one lasts four
    c = make(editions=["regular"])  # the preference alone would take the regular release
    job = c.jobs.submit("DEMO-002", "download", fields={"edition": "C"})
    assert CHAIN.run_inline(c, parse("DEMO-002"), job.job_id, "download") == ["resolve", "scrape", "cover", "download"]
    meta = c.store.read_meta(parse("DEMO-002"))
    assert meta["edition"] == "C" and meta["source"]["name"] == "jable"
    assert seconds(c, "DEMO-002") == pytest.approx(5.0, abs=0.5)
    resolved = finished(c, job.job_id, "resolve")
    assert resolved["edition"] == "C"
    # Only the sources with C pages are asked, and only for C (MissAV has them, not this title).
    assert [(o["source"], o["asked"], o["outcome"]) for o in resolved["offers"]] == \
        [("missav", ["C"], "not found"), ("jable", ["C"], "found")]
    queued = [e for e in c.events.after("0") if e.job_id == job.job_id and e.type == "queued"][0]
    assert queued.data["edition"] == "C"


def test_no_source_with_the_asked_edition_fails_and_fetches_nothing(env):
    site, make = env
    c = make(editions=["C", "regular"])
    for edition, detail in (("U", "not found"), ("UC", "has no pages for the UC edition")):
        before = sum(site.stats()["segment_requests"].values())
        job = c.jobs.submit("DEMO-001", "download", fields={"edition": edition})
        with pytest.raises(EditionNotFound) as e:
            CHAIN.run_inline(c, parse("DEMO-001"), job.job_id, "download")
        assert e.value.edition == edition and f"no source has the {edition} edition of DEMO-001" in str(e.value)
        assert "submit DEMO-001 to take the first edition in download.editions" in e.value.hint
        assert detail in str(e.value)
        assert not c.store.has_video(parse("DEMO-001"))
        assert sum(site.stats()["segment_requests"].values()) == before
        c.jobs.finish(job.job_id, "DEMO-001", "failed", message=str(e.value))


def test_a_fresh_playlist_of_another_edition_is_resolved_again(env):
    site, make = env
    site.add_edition("DEMO-001", "C", ["jable"])
    c = make(editions=["regular"])
    run(c, "DEMO-001", "metadata")  # resolves the regular release; its playlist is fresh
    assert c.store.read_meta(parse("DEMO-001"))["source"]["edition"] == ""
    job_id = submit(c, "DEMO-001", "download", "C")
    CHAIN.run_inline(c, parse("DEMO-001"), job_id, "download")
    resolved = finished(c, job_id, "resolve")
    assert not resolved.get("reused") and resolved["edition"] == "C"
    assert c.store.read_meta(parse("DEMO-001"))["edition"] == "C"
    assert seconds(c, "DEMO-001") == pytest.approx(5.0, abs=0.5)


def _job(client, job_id):
    with connect(client.st.redis_url) as r:
        return Jobs(r).get(job_id)


def test_the_submit_routes_carry_the_edition(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        cases = [("POST", "/api/downloads/abc-123-uc", None, "UC"),
                 ("POST", "/api/downloads/ABC-124-C", None, "C"),
                 ("POST", "/api/downloads/ABC-125", None, None),
                 ("POST", "/api/downloads/ABC-126-CD1", None, None),  # a disc, not an edition
                 ("POST", "/api/resource", {"avid": "ABC-127-U", "source": "any"}, "U")]
        for method, path, body, edition in cases:
            res = c.request(method, path, json=body)
            assert res.status_code == 202, res.text
            job_id = res.json()["data"]["job_id"]
            assert _job(c, job_id).get("edition") == edition, path
        batch = c.post("/api/downloads/batch_submit", json={"avids": ["ABC-128-C"]}).json()
        assert _job(c, batch["data"]["results"][0]["data"]["job_id"])["edition"] == "C"
        queued = {e.avid: e.data for e in Events(r).after("0") if e.type == "queued"}
        assert queued["ABC-123"]["edition"] == "UC" and "edition" not in queued["ABC-125"]

        # The library holds the title already: the answer says which edition it holds.
        put_resource(data, "ABC-200", video=True)
        held = c.post("/api/downloads/ABC-200-C")
        assert held.status_code == 409 and held.json()["data"]["edition"] == "regular"
        assert "ABC-200 is already downloaded in the regular edition, not C" in held.json()["message"]
        assert "/api/resource/ABC-200/upgrade" in held.json()["message"]
        put_resource(data, "ABC-201", video=True, edition="C")
        same = c.post("/api/downloads/ABC-201-C")
        assert same.status_code == 409 and same.json()["message"] == "ABC-201 is already downloaded"


def test_a_retry_asks_for_the_same_edition(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        first = c.post("/api/downloads/RTY-010-C").json()["data"]["job_id"]
        jobs.finish(first, "RTY-010", "failed", message="no source has the C edition", stage="resolve")
        plain = jobs.submit("RTY-011")
        jobs.finish(plain.job_id, "RTY-011", "failed", message="nothing", stage="resolve")
        settle(c)
        again = c.post("/api/resource/RTY-010/retry")
        assert again.status_code == 202, again.text
        assert jobs.get(again.json()["data"]["job_id"])["edition"] == "C"
        assert c.get("/api/resource/RTY-010/history").json()["data"][0]["stages"][0]["detail"]["edition"] == "C"
        other = c.post("/api/resource/RTY-011/retry").json()["data"]["job_id"]
        assert "edition" not in jobs.get(other)
