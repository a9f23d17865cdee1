"""POST /api/library/import: refused (400) outside library.import_roots with a message naming them;
a job a real Dramatiq worker runs on the real Redis, with progress events and a report."""

from __future__ import annotations

import pytest
from dramatiq import Worker
from starlette.testclient import TestClient

from actors.context import Context
from actors.registry import declare
from gateway.app import create_app
from pipeline.broker import METADATA_QUEUE, make_broker
from pipeline.config import load
from tests.conftest import wait_for
from tools.fixture_site import FixtureSite
from tools.import_collection import make_collection


def _app(tmp_path, redis_url, site, roots):
    cfg = load(site.write_config(tmp_path / f"c{len(roots)}.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                 extra={"allowed_hosts": ["testserver"], "library": {"import_roots": roots}}), {})
    return cfg, create_app(cfg, redis_url)


@pytest.fixture
def site():
    s = FixtureSite.start(titles=("IPX-100", "SSIS-101", "MIDE-102"))
    yield s
    s.stop()


def test_the_api_refuses_what_it_may_not_import(tmp_path, r, redis_url, site):
    (tmp_path / "old" / "x").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    _, app = _app(tmp_path, redis_url, site, [])
    with TestClient(app) as client:
        res = client.post("/api/library/import", json={"path": str(tmp_path / "old")})
        assert res.status_code == 400 and "library.import_roots" in res.json()["message"]
    (tmp_path / "old" / "loop").symlink_to(tmp_path / "old" / "loop")
    _, app = _app(tmp_path, redis_url, site, [str(tmp_path / "old")])
    with TestClient(app) as client:
        cases = [({"path": str(tmp_path / "old" / "loop")}, 400, "loop"),({"path": str(tmp_path / "elsewhere")}, 400, "not under an import root"),
                 ({"path": str(tmp_path / "old" / ".." / "elsewhere")}, 400, "not under an import root"),
                 ({"path": "old"}, 400, "absolute folder path"),
                 ({"path": 7}, 400, "absolute folder path"),
                 ({"path": str(tmp_path / "old") + "\x00x"}, 400, "absolute folder path"),
                 ({"path": "/" + "a" * 5000}, 400, "absolute folder path"),
                 ({"path": str(tmp_path / "old"), "mode": "rename"}, 400, "move, hardlink, copy or in-place"),
                 ({"path": str(tmp_path / "old"), "dry_run": "yes"}, 400, "true or false"),
                 ({"path": str(tmp_path / "old" / "missing")}, 400, "is not a folder")]
        for body, code, words in cases:
            res = client.post("/api/library/import", json=body)
            assert res.status_code == code and words in res.json()["message"], (body, res.json())
        assert client.get("/api/library/import/imp-0000").status_code == 404
        assert client.get("/api/library/import/nope").status_code == 404


def test_an_import_job_runs_in_a_worker_and_reports_every_file(tmp_path, r, redis_url, site):
    col = make_collection(tmp_path / "old", 24)
    for avid in col.known:
        site.state.add_title(avid)
    cfg, app = _app(tmp_path, redis_url, site, [str(tmp_path / "old")])
    ctx = Context.create(cfg, redis_url)
    broker = make_broker(redis_url, cfg.workers)
    declare(broker, cfg, lambda: ctx)
    broker.emit_after("process_boot")
    worker = Worker(broker, queues={METADATA_QUEUE}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        with TestClient(app) as client:
            res = client.post("/api/library/import", json={"path": str(col.root), "dry_run": True})
            assert res.status_code == 202, res.json()
            dry = res.json()["data"]["import_id"]

            def finished(import_id):
                data = client.get(f"/api/library/import/{import_id}").json()["data"]
                return data if data["status"] in ("completed", "failed") else None

            d = wait_for(lambda: finished(dry), 60, 0.1, "the dry run")
            assert d["status"] == "completed" and d["dry_run"] and d["counts"]["place"] > 10
            assert {i["action"] for i in d["items"]} >= {"place", "skipped"}
            assert not any((tmp_path / "data").glob("*/*.mp4"))

            res = client.post("/api/library/import", json={"path": str(col.root), "mode": "copy"})
            assert res.status_code == 202
            job = res.json()["data"]
            assert job["status"] == "queued" and job["events"] == ["import_progress", "import_finished"]
            d = wait_for(lambda: finished(job["import_id"]), 120, 0.1, "the import")
            assert d["status"] == "completed" and d["done"] == d["total"] == len(col.files)
            by_file = {i["file"]: i for i in d["items"]}
            for rel, want in col.files.items():
                item = by_file[str(col.root / rel)]
                if want.action == "place":
                    assert item["action"] == "place" and item["target"].endswith("/" + want.target)
                else:
                    assert want.reason in item["reason"], item
        events = [e for e in ctx.events.after("0", count=10_000) if e.job_id == job["import_id"]]
        assert [e.type for e in events].count("import_progress") == len(col.files)
        assert events[-1].type == "import_finished" and events[-1].data["status"] == "completed"
    finally:
        worker.stop()
        broker.close()
        ctx.redis.close()
