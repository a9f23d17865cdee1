"""An in-place import into a folder a media server already manages: the user's own NFO and
artwork beside the video are kept byte for byte (nothing is overwritten), the missing ones
are written, and the import record says which were kept. Real Redis, fixture site, videos."""

from __future__ import annotations

from actors.context import Context
from actors.importing import run_import
from pipeline.avid import parse
from pipeline.config import load
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


def test_in_place_keeps_the_users_own_nfo_and_artwork(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    video = root / "DEMO-001.mp4"
    video.write_bytes(tiny_videos()[0].read_bytes())
    theirs = {root / "DEMO-001.nfo": b"<movie><title>my own curated title</title></movie>",
              root / "DEMO-001-poster.jpg": b"my own poster"}
    for p, data in theirs.items():
        p.write_bytes(data)
    site = FixtureSite.start(titles=("DEMO-001",))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    try:
        plan = run_import(ctx, "imp-beside", str(root), "in-place", False)
        assert plan.counts()["place"] == 1, [i.to_dict() for i in plan.items]
        for p, data in theirs.items():
            assert p.read_bytes() == data, f"{p.name} is the user's own file and must stay as it was"
        # The ones that were missing are written beside it, from the library folder.
        assert (root / "DEMO-001.jpg").read_bytes() == ctx.store.cover(parse("DEMO-001")).read_bytes()
        assert (root / "DEMO-001-fanart.jpg").is_file()
        record = ctx.store.read_meta(parse("DEMO-001"))["import"]
        assert record["state"] == "done"
        assert any("DEMO-001.nfo" in w and "kept" in w for w in record["warnings"]), record["warnings"]
    finally:
        ctx.redis.close()
        site.stop()
