"""The stages run in-process on a real Redis against the fixture site: idempotent, and a
stale playlist URL is resolved again before downloading."""

import pytest

from actors import stages
from actors.context import Context
from pipeline.avid import parse
from pipeline.config import load
from pipeline.mutex import Mutex
from tools.fixture_site import FixtureSite


@pytest.fixture
def ctx(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=("DEMO-001",), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url), {})
    c = Context.create(cfg, redis_url)
    yield c, site
    c.redis.close()
    site.stop()


def test_stale_playlist_is_resolved_again_and_stages_are_idempotent(ctx):
    c, site = ctx
    avid = parse("DEMO-001")
    job = c.jobs.submit(avid.code)
    stages.resolve(c, avid, job.job_id)
    stages.scrape(c, avid, job.job_id)
    stages.cover(c, avid, job.job_id)
    d = c.store.dir(avid)
    first = {p.name: p.read_bytes() for p in d.iterdir() if p.suffix == ".jpg"}

    # Age the stored playlist URL past download.playlist_max_age_s.
    meta = c.store.read_meta(avid)
    meta["source"]["resolved_at"] = 0
    c.store.write_meta(avid, meta)
    before = site.stats()["requests"].get("missav", 0)
    stages.download(c, avid, job.job_id)
    assert site.stats()["requests"].get("missav", 0) > before  # the source page was asked again
    evs = c.events.after("0")
    assert any(e.type == "stage_finished" and e.stage == "re-resolve" for e in evs)
    assert c.store.read_meta(avid)["source"]["resolved_at"] > 0
    assert c.store.has_video(avid)
    assert Mutex(c.redis).holders() == {}  # released

    # Running every stage again changes nothing and downloads nothing.
    mp4 = c.store.video(avid).stat()
    segs = site.stats()["segment_requests"].get("DEMO-001", 0)
    stages.resolve(c, avid, job.job_id)
    stages.scrape(c, avid, job.job_id)
    stages.cover(c, avid, job.job_id)
    stages.download(c, avid, job.job_id)
    assert site.stats()["segment_requests"].get("DEMO-001", 0) == segs
    assert c.store.video(avid).stat().st_mtime_ns == mp4.st_mtime_ns
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.suffix == ".jpg"} == first


def test_cancel_reaches_a_job_waiting_for_the_download_slot(ctx):
    import threading
    import time

    from pipeline.errors import Cancelled

    c, _ = ctx
    avid = parse("DEMO-001")
    job = c.jobs.submit(avid.code)
    other = Mutex(c.redis, ttl_ms=5000)
    other.acquire()  # another worker is downloading
    try:
        threading.Timer(0.5, lambda: c.jobs.update(job.job_id, cancel=1)).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled):
            stages.download(c, avid, job.job_id)
        assert time.monotonic() - t0 < 5
        assert Mutex(c.redis).holders() == {0: other.token}  # it never took the slot
        assert not c.store.has_video(avid)
    finally:
        other.release()
