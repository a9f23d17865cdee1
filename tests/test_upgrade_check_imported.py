"""The periodic edition check works on downloaded titles, as the README says: an imported one
(the user's own file, moved or copied into the library) is no candidate, since its upgrade
would delete that file once a download replaced it. Real import on a real Redis, fixture site."""

from __future__ import annotations

from actors.context import Context
from actors.importing import run_import
from pipeline.avid import parse
from pipeline.config import load
from pipeline.editions import preference
from pipeline.upgrade_check import candidates
from tests.api_helpers import put_resource
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


def test_an_imported_title_is_no_candidate_for_the_periodic_check(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    (root / "DEMO-001.mp4").write_bytes(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    try:
        assert run_import(ctx, "imp-up", str(root), "move", False).counts()["place"] == 1
        assert ctx.store.has_video(parse("DEMO-001"))
        put_resource(tmp_path / "data", "REG-001", video=True)  # downloaded, regular release
        assert [a.code for a in candidates(ctx.store, preference(["C", "regular"]))] == ["REG-001"]
    finally:
        ctx.redis.close()
        site.stop()
