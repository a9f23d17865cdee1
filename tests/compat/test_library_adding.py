"""Add, refresh and batch add at /nassav/api as the old client expects them: answered once the
metadata job is done (a real metadata worker on the real Redis, the fixture site for the
sources), with the old status codes and fields; without a worker, at once with 202."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipeline.config import DEFAULT_SOURCES
from pipeline.events import STREAM, parse_entries
from pipeline.redis_client import connect
from tests.api_helpers import gateway, put_resource
from tests.conftest import ROOT, stop_group, wait_for
from tools.fixture_site import FixtureSite, nassav_config

API = "/nassav/api"


def _workers(redis_url: str) -> int:
    with connect(redis_url) as c:
        return c.hlen("nassav:workers")


@pytest.fixture
def served(tmp_path, r, redis_url):
    """The gateway in-process and one metadata worker process, both on the fixture site."""
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002", "DEMO-003"), stream_kind="clear", duration_s=2.0)
    data = tmp_path / "data"
    cfg_path = site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url)
    cfg = nassav_config(site.base_url)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "--queues", "metadata",
                               "--config", str(cfg_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, NASSAV_REDIS_URL=redis_url), start_new_session=True)
    try:
        wait_for(lambda: _workers(redis_url) >= 1 or worker.poll() is not None, 60, 0.1, "the worker")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        with gateway(data, redis_url, http=cfg["http"], sources=cfg["sources"], catalogues=cfg["catalogues"]) as c:
            c.data, c.site = data, site
            yield c
    finally:
        stop_group(worker)
        log.close()
        site.stop()


def job_events(redis_url: str, job_id: str) -> list:
    with connect(redis_url) as c:
        return [e for e in parse_entries(c.xrange(STREAM)) if e.job_id == job_id]


def test_add_answers_201_when_the_job_is_done_then_409(served):
    t0 = time.monotonic()
    res = served.post(f"{API}/resource", json={"avid": "demo-001", "source": "missav"})
    body = res.json()
    assert res.status_code == 201 and body["code"] == 201, body
    d = body["data"]
    assert d["resource"]["avid"] == "DEMO-001" and d["resource"]["source"] == "missav"
    assert d["resource"]["source_title"] and d["resource"]["original_title"]
    assert d["cover_downloaded"] is True and d["metadata_saved"] is True and d["scraped"] is True
    assert time.monotonic() - t0 < 20
    assert (served.data / "DEMO-001" / "DEMO-001.jpg").exists()

    again = served.post(f"{API}/resource", json={"avid": "DEMO-001", "source": "any"})
    assert again.status_code == 409 and again.json()["code"] == 409
    assert again.json()["data"]["resource"]["avid"] == "DEMO-001"  # the client shows it as existing

    bad = served.post(f"{API}/resource", json={"avid": "DEMO-002", "source": "kissav"})
    assert bad.status_code == 400 and "missav" in bad.json()["data"]["available_sources"]


def test_add_no_source_has_it_is_404(served):
    for name in DEFAULT_SOURCES:
        served.site.set_scenario(name, "not_found", avid="DEMO-002")
    res = served.post(f"{API}/resource", json={"avid": "DEMO-002"})
    assert res.status_code == 404 and res.json()["code"] == 404, res.json()
    assert "not found" in res.json()["message"]


def test_batch_add_counts_existing_as_existing(served):
    put_resource(served.data, "DEMO-001")
    res = served.post(f"{API}/resources/batch", json={"actions": [
        {"action": "add", "avid": "DEMO-001", "source": "any"},
        {"action": "add", "avid": "DEMO-003", "source": "jable"},
        {"action": "add", "avid": "not an avid"}]})
    assert res.status_code == 200 and res.json()["code"] == 200
    by = {r["avid"]: r for r in res.json()["data"]["results"]}
    assert by["DEMO-001"]["code"] == 200 and by["DEMO-001"]["message"] == "already exists"
    assert by["DEMO-001"]["resource"]["avid"] == "DEMO-001"
    assert by["DEMO-003"]["code"] == 201 and by["DEMO-003"]["message"] == "created"
    assert by["DEMO-003"]["resource"]["source"] == "jable"
    assert by["NOT AN AVID"]["code"] == 400 and all(r["action"] == "add" for r in by.values())


def test_refresh_honours_its_flags(served):
    assert served.post(f"{API}/resource", json={"avid": "DEMO-001"}).status_code == 201
    cover = served.data / "DEMO-001" / "DEMO-001.jpg"
    stamp = cover.stat().st_mtime_ns

    only_m3u8 = served.post(f"{API}/resource/refresh/DEMO-001", json={
        "refresh_m3u8": True, "refresh_metadata": False, "retranslate": False})
    d = only_m3u8.json()["data"]
    assert only_m3u8.status_code == 200, only_m3u8.json()
    assert d["m3u8_refreshed"] is True and d["metadata_refreshed"] is False
    assert d["resource"]["avid"] == "DEMO-001" and d["resource"]["file_exists"] is False
    finished = {e.stage: e.data for e in job_events(served.st.redis_url, d["task_id"]) if e.type == "stage_finished"}
    assert not finished["resolve"].get("reused") and finished["scrape"].get("reused") is True
    assert cover.stat().st_mtime_ns == stamp

    only_meta = served.post(f"{API}/resource/refresh/DEMO-001", json={"refresh_m3u8": False})
    d = only_meta.json()["data"]
    assert only_meta.status_code == 200 and d["metadata_refreshed"] is True and d["m3u8_refreshed"] is False
    assert d["m3u8_updated"] is False and d["scraped"] is True
    finished = {e.stage: e.data for e in job_events(served.st.redis_url, d["task_id"]) if e.type == "stage_finished"}
    assert finished["resolve"].get("reused") is True and not finished["scrape"].get("reused")
    assert cover.stat().st_mtime_ns > stamp  # the cover was fetched again

    # The older generation: the AVID in the body, both generations' fields in the answer.
    old = served.post(f"{API}/resource/refresh", json={"avid": "DEMO-001"})
    d = old.json()["data"]
    assert old.status_code == 200 and d["avid"] == "DEMO-001" and d["title"] and d["source"] == "missav"
    assert d["cover_downloaded"] is True and d["metadata_saved"] is True and "html_saved" in d


def test_without_a_worker_add_and_refresh_answer_at_once(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001")
    with gateway(data, redis_url) as c:
        t0 = time.monotonic()
        res = c.post(f"{API}/resource", json={"avid": "ABC-777", "source": "MissAV"})
        assert time.monotonic() - t0 < 5
        d = res.json()["data"]
        assert res.status_code == 202 and d["resource"]["avid"] == "ABC-777" and d["task_id"]
        assert d["metadata_saved"] is False and d["cover_downloaded"] is False
        assert c.post(f"{API}/resource", json={"avid": "ABC-001"}).status_code == 409

        ref = c.post(f"{API}/resource/refresh/ABC-001", json={})
        assert ref.status_code == 202 and ref.json()["data"]["task_id"]
        assert c.post(f"{API}/resource/refresh/NOPE-001", json={}).status_code == 404
        alone = c.post(f"{API}/resource/refresh/ABC-001", json={"refresh_m3u8": False, "refresh_metadata": False,
                                                                  "retranslate": True})
        assert alone.status_code == 501 and "translator" in alone.json()["message"]
        nothing = c.post(f"{API}/resource/refresh/ABC-001", json={"refresh_m3u8": False, "refresh_metadata": False})
        assert nothing.status_code == 200 and nothing.json()["data"]["resource"]["avid"] == "ABC-001"
        assert c.post(f"{API}/resource/refresh/ABC-001", json={"refresh_m3u8": "yes"}).status_code == 400
        assert c.post(f"{API}/resource", json={}).status_code == 400
