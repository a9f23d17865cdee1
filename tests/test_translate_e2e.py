"""End to end: a real metadata worker process, the gateway, the fixture site and a local
OpenAI-compatible server. A translator that answers 500 leaves the job completed with a
warning; the old client's ``retranslate`` then asks again, and the library search finds the
translated title."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.events import STREAM, parse_entries
from pipeline.redis_client import connect
from tests.api_helpers import gateway, settle
from tests.conftest import ROOT, stop_group, wait_for
from tests.fake_openai import fake_openai
from tools.fixture_site import FixtureSite, nassav_config

API = "/nassav/api"


def _workers(redis_url: str) -> int:
    with connect(redis_url) as c:
        return c.hlen("nassav:workers")


def _events(redis_url: str, job_id: str) -> list:
    with connect(redis_url) as c:
        return [e for e in parse_entries(c.xrange(STREAM)) if e.job_id == job_id]


@pytest.fixture
def served(tmp_path, r, redis_url):
    """Fake translator (answering 500 at first), one metadata worker process and the gateway."""
    site = FixtureSite.start(titles=("DEMO-001",), stream_kind="clear", duration_s=2.0)
    with fake_openai(mode="error") as translator:
        data = tmp_path / "data"
        translation = {"url": translator.url, "model": "qwen2.5:7b", "timeout_s": 5}
        cfg_path = site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url,
                                     extra={"translation": translation})
        cfg = nassav_config(site.base_url)
        log = open(tmp_path / "worker.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "--queues", "metadata",
                                   "--config", str(cfg_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, NASSAV_REDIS_URL=redis_url), start_new_session=True)
        try:
            wait_for(lambda: _workers(redis_url) >= 1 or worker.poll() is not None, 60, 0.1, "the worker")
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            with gateway(data, redis_url, http=cfg["http"], sources=cfg["sources"], catalogues=cfg["catalogues"],
                         translation=translation) as c:
                c.site, c.translator = site, translator
                yield c
        finally:
            stop_group(worker)
            log.close()
            site.stop()


def test_a_failing_translator_warns_then_retranslate_fills_the_title_and_search_finds_it(served):
    original = served.site.title("DEMO-001").title
    res = served.post(f"{API}/resource", json={"avid": "DEMO-001"})
    assert res.status_code == 201, res.json()
    job_id = res.json()["data"]["task_id"]
    events = _events(served.st.redis_url, job_id)
    warnings = [e for e in events if e.type == "warning"]
    assert len(warnings) == 1 and "title left untranslated" in warnings[0].data["message"]
    assert "HTTP 500" in warnings[0].data["message"]
    assert any(e.type == "task_completed" for e in events), [e.type for e in events]
    meta = served.get("/api/resource/metadata", params={"avid": "DEMO-001"}).json()["data"]
    assert not meta.get("translated_title")

    served.translator.mode = "ok"
    again = served.post(f"{API}/resource/refresh/DEMO-001", json={
        "refresh_m3u8": False, "refresh_metadata": False, "retranslate": True})
    d = again.json()["data"]
    assert again.status_code == 200, again.json()
    assert d["translation_queued"] is True and d["resource"]["translated_title"] == f"译 {original}"

    settle(served)
    listed = served.get("/api/resources", params={"search": "译 虛構"}).json()["data"]
    assert [i["avid"] for i in listed] == ["DEMO-001"]
    assert listed[0]["translated_title"] == f"译 {original}"
    assert served.get("/api/resources", params={"search": "译 虛構 nothing"}).json()["data"] == []
