"""An imported title's job reads in its history like any job: an ``import`` stage row with its
start, end and outcome (real files, the fixture site, the gateway's projection on real Redis)."""

from __future__ import annotations

from actors.context import Context
from actors.importing import run_import
from pipeline.config import load
from tests.api_helpers import gateway, settle
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


def test_an_import_job_has_its_import_stage_in_the_history(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    (root / "DEMO-001.mp4").write_bytes(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    data = tmp_path / "data"
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url), {}),
                         redis_url)
    try:
        with gateway(data, redis_url) as c:
            assert run_import(ctx, "imp-hist", str(root), "copy", False).counts()["place"] == 1
            settle(c)
            jobs = c.get("/api/resource/DEMO-001/history").json()["data"]
            assert [(j["kind"], j["status"]) for j in jobs] == [("import", "completed")]
            stages = {s["stage"]: s for s in jobs[0]["stages"]}
            assert stages["queued"]["detail"]["import_id"] == "imp-hist"
            row = stages["import"]
            assert row["outcome"] == "done" and row["took_s"] is not None and row["took_s"] >= 0, row
            assert "imported (copy)" in jobs[0]["message"]
    finally:
        ctx.redis.close()
        site.stop()
