"""Translation and Traditional → Simplified in the real stages, on a real Redis, against the
fixture site (whose catalogue is Traditional Chinese) and a local OpenAI-compatible server:
the metadata JSON, the NFO and the index get the readable title; a translator that is down,
slow or broken leaves a warning and a finished stage, and a later refresh translates."""

import xml.etree.ElementTree as ET
from contextlib import contextmanager

import pytest

from actors import stages
from actors.context import Context
from gateway.index import LibraryIndex, Query
from pipeline.avid import parse
from pipeline.config import load
from tests.conftest import free_port
from tests.fake_openai import fake_openai
from tools.fixture_site import FixtureSite

AVID = parse("DEMO-001")


@pytest.fixture
def site():
    s = FixtureSite.start(titles=(AVID.code,), stream_kind="clear", duration_s=2.0, segment_s=1.0)
    yield s
    s.stop()


@contextmanager
def context(tmp_path, site, redis_url, **translation):
    path = site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                             extra={"translation": translation})
    c = Context.create(load(path, {}), redis_url)
    try:
        yield c
    finally:
        c.redis.close()


def metadata_job(c, fields=None):
    """Resolve, scrape and cover, as a metadata (or refresh) job runs them."""
    job = c.jobs.submit(AVID.code, "metadata", fields=fields)
    for stage in (stages.resolve, stages.scrape, stages.cover):
        stage(c, AVID, job.job_id)
    c.jobs.finish(job.job_id, AVID.code, "completed")
    return job.job_id


def events_of(c, job_id, type_):
    return [e for e in c.events.after("0") if e.job_id == job_id and e.type == type_]


def nfo(c):
    root = ET.fromstring(c.store.nfo(AVID).read_bytes())
    return {tag: root.findtext(tag) for tag in ("title", "originaltitle", "plot", "studio", "label")} | {
        "genres": [g.text for g in root.findall("genre")], "set": root.findtext("set/name")}


def test_translated_and_simplified_title_in_json_nfo_and_index(tmp_path, site, r, redis_url):
    original = site.title(AVID.code).title  # "虛構的測試影片 Fixture Story No.…"
    with fake_openai() as srv, context(tmp_path, site, redis_url, url=srv.url, model="m",
                                       chinese_conversion="t2s") as c:
        job_id = metadata_job(c)
        meta = c.store.read_meta(AVID)
        assert meta["original_title"] == original  # as the catalogue printed it
        assert meta["title"] == original.replace("虛構", "虚构").replace("測試", "测试")
        assert meta["translated_title"] == f"译 {original}"  # made from the catalogue's own text
        assert meta["translation"]["title"]["from"] == original
        assert meta["translation"]["title"]["model"] == "m"
        assert meta["translation"]["title"]["target_language"] == "Simplified Chinese"
        # Every Traditional character of the fixture's studios, labels, series and genres is gone.
        assert meta["studio"] and meta["label"] and meta["series"].startswith("示范系列") and meta["genres"]
        words = meta["studio"] + meta["label"] + meta["series"] + "".join(meta["genres"])
        assert not any(ch in words for ch in "虛測範劇園戀運懸溫職樂唱發")

        doc = nfo(c)
        assert doc["title"] == f"{AVID.code} 译 {original}"
        assert doc["originaltitle"] == original
        assert doc["plot"] == f"译 {original}"
        assert doc["studio"] == meta["studio"] and doc["genres"] == meta["genres"]

        [done] = events_of(c, job_id, "stage_finished")[1:2]  # resolve, scrape, cover
        assert done.stage == "scrape" and done.data["translated"] == ["title"]
        assert "genres" in done.data["converted"] and "title" in done.data["converted"]
        assert not events_of(c, job_id, "warning")

        # The same text is not asked again; a refresh of the metadata asks again.
        asked = len(srv.requests)
        metadata_job(c)
        assert len(srv.requests) == asked
        refresh = metadata_job(c, {"refresh": "metadata"})
        assert len(srv.requests) == asked + 1
        assert events_of(c, refresh, "stage_finished")[1].data["translated"] == ["title"]

        index = LibraryIndex(c.config.data_path, store=c.store)
        try:
            index.sync([AVID])
            found, total = index.list(Query(search="译 虛構的"))
            assert total == 1 and found[0]["translated_title"] == f"译 {original}"
            assert index.list(Query(search="虚构的测试"))[1] == 1  # the simplified title too
        finally:
            index.close()


def test_nfo_title_original_keeps_the_catalogue_title_in_the_nfo(tmp_path, site, r, redis_url):
    original = site.title(AVID.code).title
    with fake_openai() as srv, context(tmp_path, site, redis_url, url=srv.url, model="m",
                                       nfo_title="original") as c:
        metadata_job(c)
        assert c.store.read_meta(AVID)["translated_title"] == f"译 {original}"
        assert c.store.read_meta(AVID)["title"] == original  # no conversion: off by default
        assert nfo(c)["title"] == f"{AVID.code} {original}"
        assert nfo(c)["originaltitle"] == original


def test_without_translation_settings_nothing_changes(tmp_path, site, r, redis_url):
    with context(tmp_path, site, redis_url) as c:
        job_id = metadata_job(c)
        meta = c.store.read_meta(AVID)
        assert "translated_title" not in meta and "translation" not in meta
        assert meta["title"] == site.title(AVID.code).title
        assert "translated" not in events_of(c, job_id, "stage_finished")[1].data


@pytest.mark.parametrize("mode", ["down", "slow", "error", "garbage"])
def test_a_broken_translator_is_a_warning_and_a_refresh_translates(tmp_path, site, r, redis_url, mode):
    original = site.title(AVID.code).title
    with fake_openai(mode="ok" if mode == "down" else mode, delay_s=30) as srv:
        url = f"http://127.0.0.1:{free_port()}/v1/chat/completions" if mode == "down" else srv.url
        with context(tmp_path, site, redis_url, url=url, model="m", timeout_s=1) as c:
            job_id = metadata_job(c)
            meta = c.store.read_meta(AVID)
            assert not meta.get("translated_title") and meta["title"] == original
            assert meta["catalogue"]["name"] and c.store.cover(AVID).exists()  # the job did its work
            [warning] = events_of(c, job_id, "warning")
            assert warning.stage == "scrape"
            assert warning.data["message"].startswith("title left untranslated: translator at ")
            assert "a refresh of the metadata asks again" in warning.data["message"]
            assert events_of(c, job_id, "stage_finished")[1].data["translated"] == []
            assert nfo(c)["title"] == f"{AVID.code} {original}"
        if mode == "down":
            return
        srv.mode = "ok"
        with context(tmp_path, site, redis_url, url=srv.url, model="m", timeout_s=1) as c:
            refresh = metadata_job(c, {"refresh": "metadata"})
            assert c.store.read_meta(AVID)["translated_title"] == f"译 {original}"
            assert not events_of(c, refresh, "warning")
            assert nfo(c)["title"] == f"{AVID.code} 译 {original}"


def test_a_failure_keeps_the_translation_of_the_same_text(tmp_path, site, r, redis_url):
    original = site.title(AVID.code).title
    with fake_openai() as srv, context(tmp_path, site, redis_url, url=srv.url, model="m") as c:
        metadata_job(c)
        srv.mode = "error"
        refresh = metadata_job(c, {"refresh": "metadata"})
        assert len(events_of(c, refresh, "warning")) == 1
        assert c.store.read_meta(AVID)["translated_title"] == f"译 {original}"
