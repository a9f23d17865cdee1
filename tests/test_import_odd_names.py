"""Imports of collections whose file names are not UTF-8 (Shift-JIS or GBK names copied from
an old Windows share): the import finishes, the title is placed, the name is reported
readably. Real Redis, the fixture site, real videos."""

from __future__ import annotations

import json
import os

from actors.context import Context
from actors.importing import run_import
from pipeline.avid import parse
from pipeline.config import load
from pipeline.import_plan import PLACE
from tests.api_helpers import gateway
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


def test_a_file_name_that_is_not_utf8_is_imported(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    # "DEMO-001 出演.mp4" in Shift-JIS: bytes the file system keeps, no UTF-8 text.
    name = b"DEMO-001 " + "出演".encode("shift_jis") + b".mp4"
    with open(os.path.join(os.fsencode(root), name), "wb") as f:
        f.write(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    try:
        for mode in ("copy", "copy"):  # the second run finds it done
            plan = run_import(ctx, f"imp-sjis-{mode}", str(root), mode, False)
        (item,) = plan.items
        assert item.action in (PLACE, "done"), item.to_dict()
        avid = parse("DEMO-001")
        assert ctx.store.download_target(avid).is_file()
        meta = json.loads(ctx.store.meta(avid).read_text(encoding="utf-8"))
        assert meta["import"]["state"] == "done"
        record = ctx.redis.hgetall("nassav:import:imp-sjis-copy")
        assert record["status"] == "completed", record
        json.loads(record["report"])
        # What the API shows of it: the import's report and the title's record.
        with gateway(tmp_path / "data", redis_url) as c:
            res = c.get("/api/library/import/imp-sjis-copy")
            assert res.status_code == 200, res.text
            assert res.json()["data"]["items"][0]["file"].startswith(str(root / "DEMO-001 "))
            res = c.get("/api/resource/metadata?avid=DEMO-001")
            assert res.status_code == 200, res.text
    finally:
        ctx.redis.close()
        site.stop()
