"""Editions through the stages, in-process on a real Redis against the fixture site (real HLS
streams made by ffmpeg): the download takes the most preferred edition and records it; an
upgrade job downloads a better edition beside the old video and replaces it once verified;
with no better edition, or a failed download, nothing on disk changes."""

from __future__ import annotations

import json

import pytest

from actors import stages
from actors.context import Context
from actors.registry import CHAIN
from pipeline import jobs as jobstates
from pipeline.avid import parse
from pipeline.config import load
from pipeline.errors import NothingToUpgrade, SegmentFailed
from pipeline.hls.remux import ffmpeg_exe, probe_duration
from tools.fixture_site import FixtureSite


@pytest.fixture
def env(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"), stream_kind="clear", duration_s=4.0, segment_s=1.0)

    def make(**download):
        download.setdefault("segment_retries", 0)
        cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                     extra={"download": download}), {})
        made.append(Context.create(cfg, redis_url))
        return made[-1]
    made: list[Context] = []
    yield site, make
    for c in made:
        c.redis.close()
    site.stop()


def run(c: Context, code: str, kind: str) -> tuple[str, list[str]]:
    """The job through its stages, ended as the stage runner ends it."""
    job = c.jobs.submit(code, kind)
    assert job.accepted
    ran = CHAIN.run_inline(c, parse(code), job.job_id, kind)
    if c.jobs.get(job.job_id)["status"] not in jobstates.TERMINAL:
        c.jobs.finish(job.job_id, code, jobstates.COMPLETED)
    return job.job_id, ran


def finished(c: Context, job_id: str, stage: str) -> dict:
    return [e.data for e in c.events.after("0") if e.job_id == job_id and e.type == "stage_finished"
            and e.stage == stage][-1]


def seconds(c: Context, code: str) -> float:
    return probe_duration(ffmpeg_exe(None), c.store.video(parse(code)))


def snapshot(c: Context, code: str) -> dict:
    d = c.store.dir(parse(code))
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in d.iterdir() if p.is_file()}


def test_a_download_takes_the_most_preferred_edition_and_records_it(env):
    site, make = env
    site.add_edition("DEMO-002", "C", ["jable"])  # five seconds long: the regular one lasts four
    c = make(editions=["C", "regular"])
    job_id, ran = run(c, "DEMO-002", "download")
    assert ran == ["resolve", "scrape", "cover", "download"]
    meta = c.store.read_meta(parse("DEMO-002"))
    assert meta["edition"] == "C" and meta["source"]["name"] == "jable" and meta["source"]["edition"] == "C"
    assert seconds(c, "DEMO-002") == pytest.approx(5.0, abs=0.5)
    assert site.stats()["segment_requests"].get("DEMO-002-C") and not site.stats()["segment_requests"].get("DEMO-002")
    resolved = finished(c, job_id, "resolve")
    assert resolved["edition"] == "C" and resolved["source"] == "jable"
    assert [(o["source"], o["offered"]) for o in resolved["offers"]] == [("missav", ["regular"]), ("jable", ["C"])]
    nfo = c.store.nfo(parse("DEMO-002")).read_text()
    assert "<edition>Chinese subtitles</edition>" in nfo and "<tag>Chinese subtitles</tag>" in nfo
    # The library holds the C edition: a plain delete names it, so the rule of one edition per folder holds.
    assert c.store.held(parse("DEMO-002")).full == "DEMO-002-C"


def test_regular_only_preference_keeps_the_regular_release(env):
    site, make = env
    site.add_edition("DEMO-002", "C", ["missav", "jable"])
    c = make(editions=["regular"])
    job_id, _ = run(c, "DEMO-002", "download")
    meta = c.store.read_meta(parse("DEMO-002"))
    assert meta["edition"] == "" and finished(c, job_id, "resolve")["edition"] == "regular"
    assert "<edition>" not in c.store.nfo(parse("DEMO-002")).read_text()
    assert seconds(c, "DEMO-002") == pytest.approx(4.0, abs=0.5)


def test_upgrade_replaces_the_video_once_the_better_edition_verified(env):
    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    avid = parse("DEMO-001")
    old = c.store.video(avid).stat()
    assert c.store.read_meta(avid)["edition"] == ""

    site.add_edition("DEMO-001", "C", ["jable"])  # the subtitled release appears later
    job_id, ran = run(c, "DEMO-001", "upgrade")
    assert ran == ["resolve", "download"]  # scrape and cover are kept as they are
    meta = c.store.read_meta(avid)
    assert meta["edition"] == "C" and meta["source"]["name"] == "jable"
    assert [(h["from"], h["to"], h["source"], h["job_id"]) for h in meta["edition_history"]] == \
        [("regular", "C", "jable", job_id)]
    assert meta["video"]["bytes"] == c.store.video(avid).stat().st_size != old.st_size
    assert c.store.video(avid).stat().st_ino != old.st_ino  # a new file renamed over the old one
    assert seconds(c, "DEMO-001") == pytest.approx(5.0, abs=0.5)
    assert not [p.name for p in c.store.dir(avid).iterdir() if p.name.startswith(".")]  # no temp left
    assert not c.store.part_dir(avid).exists()
    for stage in ("resolve", "download"):
        data = finished(c, job_id, stage)
        assert (data["edition_from"], data["edition_to"], data["source"]) == ("regular", "C", "jable")
    assert finished(c, job_id, "download")["replaced"] is True
    progress = [e.data["percent"] for e in c.events.after("0") if e.job_id == job_id and e.type == "progress_update"]
    assert progress and progress[-1] == 100  # live progress, as for any download
    assert "<edition>Chinese subtitles</edition>" in c.store.nfo(avid).read_text()
    job = c.jobs.get(job_id)
    assert job["kind"] == "upgrade" and job["edition_to"] == "C"


def test_no_better_edition_changes_nothing(env):
    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    avid = parse("DEMO-001")
    before, meta = snapshot(c, "DEMO-001"), c.store.read_meta(avid)
    segments = site.stats()["segment_requests"]["DEMO-001"]

    job_id, _ = run(c, "DEMO-001", "upgrade")
    assert snapshot(c, "DEMO-001") == before and c.store.read_meta(avid) == meta
    assert site.stats()["segment_requests"]["DEMO-001"] == segments
    job = c.jobs.get(job_id)
    assert job["status"] == jobstates.COMPLETED and "no source has an edition preferred to regular" in job["message"]
    data = finished(c, job_id, "resolve")
    assert data["upgrade"] is False and data["edition_to"] is None and data["source"] is None
    assert [(o["source"], o["asked"], o["outcome"]) for o in data["offers"]] == \
        [("missav", ["C"], "not found"), ("jable", ["C"], "not found")]
    assert c.jobs.live_job("DEMO-001") is None  # the claim was freed at the resolve stage
    done = [e for e in c.events.after("0") if e.job_id == job_id and e.type == "task_completed"]
    assert len(done) == 1 and done[0].data["unchanged"] is True  # nobody is notified of it

    # Holding the most preferred edition already: no source is even asked.
    c.store.update_meta(avid, edition="C")
    asked = dict(site.stats()["requests"])
    job_id, _ = run(c, "DEMO-001", "upgrade")
    assert finished(c, job_id, "resolve")["offers"] == []
    assert {k: v for k, v in site.stats()["requests"].items() if k in ("missav", "jable")} == \
        {k: v for k, v in asked.items() if k in ("missav", "jable")}


def test_a_failed_upgrade_download_keeps_the_old_video(env):
    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    avid = parse("DEMO-001")
    before, meta = snapshot(c, "DEMO-001"), c.store.read_meta(avid)
    site.add_edition("DEMO-001", "C", ["jable"])
    site.set_faults(fail_segments=[2])
    job = c.jobs.submit("DEMO-001", "upgrade")
    stages.resolve(c, avid, job.job_id)
    with pytest.raises(SegmentFailed):
        stages.download(c, avid, job.job_id)
    assert snapshot(c, "DEMO-001") == before and c.store.read_meta(avid) == meta
    # The next try (Dramatiq's retry) resumes and replaces it.
    site.set_faults(fail_segments=[])
    stages.download(c, avid, job.job_id)
    assert c.store.read_meta(avid)["edition"] == "C"
    assert json.loads(c.jobs.get(job.job_id)["upgrade_source"])["name"] == "jable"


def test_an_upgrade_of_a_title_without_video_fails_clearly(env):
    site, make = env
    c = make()
    job = c.jobs.submit("DEMO-002", "upgrade")
    with pytest.raises(NothingToUpgrade, match="no video to upgrade; download it first"):
        stages.resolve(c, parse("DEMO-002"), job.job_id)


def test_an_upgrade_sent_straight_to_its_download_looks_first(env):
    """A retry starts at the stage that failed: the download stage of an upgrade job that has
    no edition on record yet asks the sources itself."""
    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    avid = parse("DEMO-001")
    site.add_edition("DEMO-001", "C", ["jable"])
    job = c.jobs.submit("DEMO-001", "upgrade", fields={"start_stage": "download"})
    stages.download(c, avid, job.job_id)
    assert c.store.read_meta(avid)["edition"] == "C"
    assert finished(c, job.job_id, "resolve")["edition_to"] == "C"
    assert c.jobs.get(job.job_id)["status"] == jobstates.RUNNING  # the runner ends it, once


def test_an_upgrade_retried_after_its_source_was_blocked_does_not_use_it(env):
    """The edition found at the resolve is on the job; a source the user blocks for the AVID
    before the download (a retry) is not downloaded from: the sources are asked again."""
    from pipeline.blocklist import Blocklist

    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    avid = parse("DEMO-001")
    before, meta = snapshot(c, "DEMO-001"), c.store.read_meta(avid)
    site.add_edition("DEMO-001", "C", ["jable"])
    job = c.jobs.submit("DEMO-001", "upgrade")
    stages.resolve(c, avid, job.job_id)
    assert json.loads(c.jobs.get(job.job_id)["upgrade_source"])["name"] == "jable"
    Blocklist(c.redis).add_source("DEMO-001", "jable", "broken copy")
    fetched = site.stats()["segment_requests"].get("DEMO-001-C", 0)
    stages.download(c, avid, job.job_id)
    assert site.stats()["segment_requests"].get("DEMO-001-C", 0) == fetched
    assert snapshot(c, "DEMO-001") == before and c.store.read_meta(avid) == meta
    # Nothing better elsewhere: the job ends unchanged (no notification), as at the resolve.
    done = [e for e in c.events.after("0") if e.job_id == job.job_id and e.type == "task_completed"]
    assert c.jobs.get(job.job_id)["status"] == jobstates.COMPLETED
    assert len(done) == 1 and done[0].data["unchanged"] is True


def test_an_upgrade_sent_straight_to_its_download_that_finds_nothing_ends_unchanged(env):
    site, make = env
    c = make(editions=["C", "regular"])
    run(c, "DEMO-001", "download")
    job = c.jobs.submit("DEMO-001", "upgrade", fields={"start_stage": "download"})
    stages.download(c, parse("DEMO-001"), job.job_id)
    done = [e for e in c.events.after("0") if e.job_id == job.job_id and e.type == "task_completed"]
    assert len(done) == 1 and done[0].data["unchanged"] is True  # not a plain "done" that notifies
