"""The free-space guard (``download.min_free_gb``) holds for an import that copies: a title
whose copy would take the data dir's disk under the threshold stays where it is, with the
reason; a move on the same device takes no space and goes ahead (real files, real Redis)."""

from __future__ import annotations

import shutil

import pytest

from actors.context import Context
from actors.importing import run_import
from pipeline.avid import parse
from pipeline.config import load
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


@pytest.fixture
def world(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=("DEMO-001",))
    made: list[Context] = []

    def make(min_free_gb: float) -> Context:
        root = tmp_path / "old"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        (root / "DEMO-001.mp4").write_bytes(tiny_videos()[0].read_bytes())
        cfg = site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                extra={"download": {"min_free_gb": min_free_gb}})
        made.append(Context.create(load(cfg, {}), redis_url))
        return made[-1]
    yield tmp_path / "old", make
    for c in made:
        c.redis.close()
    site.stop()


def test_a_copy_that_would_fill_the_disk_leaves_the_title(world):
    root, make = world
    free_gb = shutil.disk_usage(root.parent).free / 1e9
    ctx = make(free_gb * 10)  # the threshold lies far above what the disk has
    plan = run_import(ctx, "imp-disk-1", str(root), "copy", False)
    item = plan.items[0]
    assert item.action == "skipped" and "disk has" in item.reason and "min_free_gb" in item.reason
    assert not ctx.store.has_video(parse("DEMO-001")) and (root / "DEMO-001.mp4").is_file()
    assert ctx.jobs.live_job("DEMO-001") is None  # no claim was taken


def test_a_move_on_the_same_device_takes_no_space_and_goes_ahead(world):
    root, make = world
    ctx = make(shutil.disk_usage(root.parent).free / 1e9 * 10)
    plan = run_import(ctx, "imp-disk-2", str(root), "move", False)
    assert plan.counts()["place"] == 1 and ctx.store.has_video(parse("DEMO-001"))


def test_with_room_a_copy_goes_ahead(world):
    root, make = world
    ctx = make(0.001)
    plan = run_import(ctx, "imp-disk-3", str(root), "copy", False)
    assert plan.counts()["place"] == 1 and (root / "DEMO-001.mp4").is_file()
