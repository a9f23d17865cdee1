"""An import whose library changes while it runs (a download lands, files appear): the title
that now has a video is left as a conflict, the library's files and metadata untouched, and
no journal entry is left to break the next run. Real Redis, the fixture site, real videos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from actors.context import Context
from actors.importing import ServiceHooks, run_import
from pipeline.avid import parse
from pipeline.config import load
from pipeline.import_plan import CONFLICT, PLACE, build, check_source
from pipeline.import_run import Importer
from tests.api_helpers import put_resource
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


@pytest.fixture
def setting(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    v = tiny_videos()
    (root / "DEMO-001.mp4").write_bytes(v[0].read_bytes())
    (root / "DEMO-002.mp4").write_bytes(v[1].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    yield root, ctx
    ctx.redis.close()
    site.stop()


@pytest.mark.parametrize("mode", ["move", "copy"])
def test_a_download_landing_after_the_plan_is_a_conflict_not_a_stuck_journal(setting, tmp_path, mode):
    root, ctx = setting
    plan = build(check_source(root, ctx.store, mode), ctx.store, mode)
    assert {i.source.name: i.action for i in plan.items} == {"DEMO-001.mp4": PLACE, "DEMO-002.mp4": PLACE}
    # While the import walks, a download of DEMO-001 finishes (its job released the claim).
    put_resource(tmp_path / "data", "DEMO-001", title="Downloaded", video=True)
    avid = parse("DEMO-001")
    meta_before = ctx.store.meta(avid).read_bytes()
    video_before = ctx.store.download_target(avid).read_bytes()

    Importer(ctx.store, ServiceHooks(ctx, f"imp-{mode}")).run(plan)
    got = {i.source.name: i for i in plan.items}
    assert got["DEMO-001.mp4"].action == CONFLICT, got["DEMO-001.mp4"].to_dict()
    assert "already holds" in got["DEMO-001.mp4"].reason
    assert (root / "DEMO-001.mp4").exists(), "the collection's file stays where it is"
    assert ctx.store.download_target(avid).read_bytes() == video_before
    assert ctx.store.meta(avid).read_bytes() == meta_before, "the downloaded title's metadata is untouched"
    assert not Importer(ctx.store, ServiceHooks(ctx, "imp-look")).pending(), "no journal entry left behind"
    assert got["DEMO-002.mp4"].action == PLACE and ctx.store.has_video(parse("DEMO-002"))

    # The next run of the same import completes and reports the conflict again.
    again = run_import(ctx, f"imp-{mode}-2", str(root), mode, False)
    assert {i.source.name: i.action for i in again.items}["DEMO-001.mp4"] == CONFLICT
    record = ctx.redis.hgetall(f"nassav:import:imp-{mode}-2")
    assert record["status"] == "completed", record
    assert json.loads(ctx.store.meta(avid).read_text())["title"] == "Downloaded"


class Killed(BaseException):
    """Stands for SIGKILL between placing a title's files and writing its metadata."""


def test_a_journal_entry_that_cannot_finish_does_not_fail_every_later_import(setting, tmp_path):
    from pipeline.claims import claim_key

    root, ctx = setting

    class DiesOnce(ServiceHooks):
        def finish(self, avid):
            raise Killed()

    plan = build(check_source(root, ctx.store, "copy"), ctx.store, "copy")
    with pytest.raises(Killed):
        Importer(ctx.store, DiesOnce(ctx, "imp-k")).run(plan)
    (entry,) = Importer(ctx.store, ServiceHooks(ctx, "imp-k")).pending()
    ctx.redis.delete(claim_key(parse(entry["avid"]).code))  # the killed process's claim
    # The user deletes the original they had copied: the journal cannot check that copy again.
    gone = Path(entry["files"][0]["source"])
    gone.unlink()
    other = next(p for p in root.iterdir())

    plan = run_import(ctx, "imp-after", str(root), "copy", False)
    record = ctx.redis.hgetall("nassav:import:imp-after")
    assert record["status"] == "completed", record
    assert {i.source.name: i.action for i in plan.items} == {other.name: PLACE}
    assert ctx.store.has_video(parse(other.stem))
    assert gone.stem in record["message"], record["message"]  # the title left in the journal is named


@pytest.mark.parametrize("mode", ["move", "copy"])
def test_a_file_gone_from_the_collection_after_the_plan_leaves_no_trace(setting, tmp_path, mode):
    """The user tidies the collection while a long import runs: a planned file is gone when
    its title's turn comes. It is reported, and no metadata-only folder or journal entry is
    left for it."""
    root, ctx = setting
    plan = build(check_source(root, ctx.store, mode), ctx.store, mode)
    (root / "DEMO-001.mp4").rename(tmp_path / "elsewhere.mp4")

    Importer(ctx.store, ServiceHooks(ctx, f"imp-gone-{mode}")).run(plan)
    got = {i.source.name: i for i in plan.items}
    assert got["DEMO-001.mp4"].action == "skipped" and "gone" in got["DEMO-001.mp4"].reason, \
        got["DEMO-001.mp4"].to_dict()
    assert not ctx.store.dir(parse("DEMO-001")).exists(), "no metadata-only title for a file never imported"
    assert not Importer(ctx.store, ServiceHooks(ctx, "imp-look")).pending()
    assert got["DEMO-002.mp4"].action == PLACE and ctx.store.has_video(parse("DEMO-002"))
    again = run_import(ctx, f"imp-gone-{mode}-2", str(root), mode, False)
    assert ctx.redis.hgetall(f"nassav:import:imp-gone-{mode}-2")["status"] == "completed"
    assert "resumed" not in ctx.redis.hgetall(f"nassav:import:imp-gone-{mode}-2")["message"]
    assert [i.source.name for i in again.items] == (["DEMO-002.mp4"] if mode == "copy" else [])


def test_a_move_across_devices_killed_between_its_copy_and_unlink_is_finished(setting, tmp_path):
    """Across file systems a move copies, links the copy into place, then unlinks the original.
    Killed between the last two, the library holds an identical copy and the original is still
    there: the next run's journal replay finishes the move instead of leaving the title stuck."""
    import shutil

    from pipeline.claims import claim_key

    root, ctx = setting

    class DiesOnce(ServiceHooks):
        def finish(self, avid):
            raise Killed()

    plan = build(check_source(root, ctx.store, "move"), ctx.store, "move")
    with pytest.raises(Killed):
        Importer(ctx.store, DiesOnce(ctx, "imp-x")).run(plan)
    (entry,) = Importer(ctx.store, ServiceHooks(ctx, "imp-x")).pending()
    ctx.redis.delete(claim_key(parse(entry["avid"]).code))  # the killed process's claim
    (f,) = entry["files"]
    # The state the cross-device path leaves when killed after linking its copy into place:
    # the original still in the collection, a separate identical file in the library.
    shutil.copyfile(f["target"], f["source"])
    assert not os.path.samefile(f["source"], f["target"])

    again = Importer(ctx.store, ServiceHooks(ctx, "imp-y"))
    assert again.resume() == [parse(entry["avid"]).code] and again.left_in_journal == []
    assert not os.path.exists(f["source"]) and os.path.exists(f["target"])
    assert ctx.store.read_meta(parse(entry["avid"]))["import"]["state"] == "done"


def test_a_symbolic_link_to_a_folder_is_reported_not_silently_passed_over(setting, tmp_path):
    """A collection that reaches a second disk through a symlinked folder: the import does not
    follow it (it could lead anywhere, the library included), and says so in the report."""
    root, ctx = setting
    other = tmp_path / "disk2"
    other.mkdir()
    (other / "DEMO-003.mp4").write_bytes(b"\x00" * 1024)
    (root / "more").symlink_to(other, target_is_directory=True)
    plan = build(check_source(root, ctx.store, "move"), ctx.store, "move")
    got = {i.source.name: i for i in plan.items}
    assert "more" in got, sorted(got)
    assert got["more"].action == "skipped" and "symbolic link to a folder" in got["more"].reason
    assert "DEMO-003.mp4" not in got
