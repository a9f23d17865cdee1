"""``nassav import``: the plan, atomic placement, the journal, and whole imports of a generated
collection of real tiny videos against the fixture site on a real Redis."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.context import Context
from actors.importing import ServiceHooks, run_import
from pipeline.avid import parse
from pipeline.claims import claim_key
from pipeline.config import load
from pipeline.import_plan import CONFLICT, DONE, PLACE, ImportRefused, build, check_source, target_name
from pipeline.import_run import Importer, place
from pipeline.store import ResourceStore
from tests.conftest import ROOT, needs, stop_group, wait_for
from tools.fixture_site import FixtureSite
from tools.import_collection import make_collection, tiny_videos


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: size and inode (a move, copy or rewrite changes one)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_ino, st.st_mtime_ns)
    return out


def check_outcome(col, plan, data: Path) -> None:
    """Every file did what the collection expects; placed titles have their metadata."""
    by_rel = {str(i.source.relative_to(col.root)): i for i in plan.items}
    assert set(by_rel) == set(col.files)
    store = ResourceStore(data)
    for rel, want in col.files.items():
        got = by_rel[rel]
        assert got.action in (want.action, DONE if want.action == PLACE else want.action), (rel, got.to_dict())
        if want.action == PLACE:
            avid = parse(want.avid)
            target = store.dir(avid) / want.target
            assert target.is_file() and not (col.root / rel).exists(), rel
            meta = store.read_meta(avid)
            assert meta["import"]["state"] == "done" and meta["title"] and meta["catalogue"], rel
            assert store.nfo(avid).is_file() and store.cover(avid).is_file(), rel
            assert meta.get("edition", "") == want.edition, rel
        else:
            assert (col.root / rel).is_file(), f"{rel} must stay where it is"
            assert want.reason in got.reason, (rel, got.reason)


@pytest.fixture
def world(tmp_path, r, redis_url):
    """A 300-file collection, the fixture site serving its known titles, and a worker context."""
    col = make_collection(tmp_path / "old", 300, library=tmp_path / "data")
    site = FixtureSite.start(titles=tuple(col.known))
    cfg_path = site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url)
    ctx = Context.create(load(cfg_path, {}), redis_url)
    yield col, site, ctx, cfg_path
    ctx.redis.close()
    site.stop()


def test_check_source_refuses_with_the_accepted_form(tmp_path):
    store = ResourceStore(tmp_path / "data")
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "f.mp4").write_bytes(b"x")
    cases = {tmp_path / "nope": "is not a folder", tmp_path / "f.mp4": "is not a folder",
             tmp_path / "data" / "sub": "overlaps the library", tmp_path: "overlaps the library"}
    for path, words in cases.items():
        with pytest.raises(ImportRefused, match=words):
            check_source(path, store, "move")
    (tmp_path / "old").mkdir()
    with pytest.raises(ImportRefused, match="one of move, hardlink, copy or in-place"):
        check_source(tmp_path / "old", store, "rename")
    assert check_source(tmp_path / "old", store, "hardlink") == (tmp_path / "old").resolve()
    assert target_name(parse("ABC-123-C"), 2, ".MKV") == "ABC-123-cd2.mkv"


def test_place_never_overwrites_and_finishes_an_interrupted_move(tmp_path):
    a, b = (tmp_path / n for n in ("a.mp4", "b.mp4"))
    a.write_bytes(b"one")
    b.write_bytes(b"two!")
    lib = tmp_path / "lib"
    place(a, lib / "A.mp4", "copy")
    assert (lib / "A.mp4").read_bytes() == b"one" and a.exists()
    assert not list(lib.glob(".*.tmp"))
    place(a, lib / "A.mp4", "copy")  # the same copy again: nothing to do
    with pytest.raises(FileExistsError):
        place(b, lib / "A.mp4", "copy")
    assert (lib / "A.mp4").read_bytes() == b"one"
    place(b, lib / "B.mp4", "hardlink")
    assert os.path.samefile(b, lib / "B.mp4")
    # A move killed between its link and its unlink leaves both names: the next run unlinks.
    os.link(a, lib / "C.mp4")
    place(a, lib / "C.mp4", "move")
    assert not a.exists() and (lib / "C.mp4").read_bytes() == b"one"
    place(a, lib / "C.mp4", "move")  # the source already gone: done
    with pytest.raises(FileExistsError):
        place(b, lib / "C.mp4", "move")
    assert b.exists()


def test_multi_part_and_duplicate_grouping(tmp_path):
    root, data = tmp_path / "old", tmp_path / "data"
    v = tiny_videos()
    for name, src in (("abc-123-cd2.mp4", 1), ("ABC-123-CD1.mp4", 0), ("[x.com]ABC-123.mp4", 2),
                      ("DEF-456-A.mkv", 0), ("def-456-a copy.mp4", 1)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(v[src].read_bytes())
    plan = build(root, ResourceStore(data), "move")
    got = {i.source.name: (i.action, i.target.name if i.target else None) for i in plan.items}
    assert got["ABC-123-CD1.mp4"] == (PLACE, "ABC-123-cd1.mp4")
    assert got["abc-123-cd2.mp4"] == (PLACE, "ABC-123-cd2.mp4")
    assert got["[x.com]ABC-123.mp4"][0] == "duplicate"
    # One part alone is the whole title.
    assert got["DEF-456-A.mkv"] == (PLACE, "DEF-456.mkv") and got["def-456-a copy.mp4"][0] == "duplicate"
    assert [i.part for i in plan.titles["ABC-123"].placing] == [1, 2]


def test_a_300_file_collection_imports_and_a_second_run_changes_nothing(world, tmp_path):
    col, site, ctx, _ = world
    data = tmp_path / "data"
    plan = run_import(ctx, "imp-test1", str(col.root), "move", False)
    check_outcome(col, plan, data)
    counts = plan.counts()
    assert counts["place"] > 150 and counts["conflict"] == len(col.conflicts) > 0
    assert counts["duplicate"] > 0 and counts["skipped"] > 40
    # A conflict reports both files' sizes and durations and leaves both.
    conflict = next(i for i in plan.items if i.action == CONFLICT)
    assert conflict.reason.count(" bytes, ") == 2 and " s)" in conflict.reason
    # Multi-part titles keep their parts in order, with one NFO.
    multi = next(e for e in col.files.values() if e.target.endswith("-cd2.mp4"))
    d = data / multi.avid
    assert sorted(p.name for p in d.glob("*-cd*")) == [f"{multi.avid}-cd1.mp4", f"{multi.avid}-cd2.mp4"]
    assert len(list(d.glob("*.nfo"))) == 1
    assert [p["file"] for p in ctx.store.read_meta(parse(multi.avid))["video"]["parts"]] == \
        [f"{multi.avid}-cd1.mp4", f"{multi.avid}-cd2.mp4"]
    # Every title went through the claim path: a finished job each, no claim left behind.
    assert not list(ctx.redis.scan_iter(match=claim_key("*")))
    events = ctx.events.after("0", count=10_000)
    progress = [e for e in events if e.type == "import_progress"]
    assert len(progress) == len(col.files) and progress[-1].data["done"] == len(col.files)
    imported = sum(1 for t in plan.titles.values() if t.placing)
    assert sum(e.type == "task_completed" and e.stage == "import" for e in events) == imported
    # A title no catalogue knows had its job too, failed with the reason.
    assert sum(e.type == "task_failed" and e.stage == "import" for e in events) == len(plan.titles) - imported
    record = ctx.redis.hgetall("nassav:import:imp-test1")
    assert record["status"] == "completed" and json.loads(record["counts"]) == counts

    before = tree(tmp_path)
    again = run_import(ctx, "imp-test2", str(col.root), "move", False)
    assert tree(tmp_path) == before
    assert again.counts()["place"] == 0 and again.counts()["done"] == 0


def test_hardlink_then_copy_are_idempotent(world, tmp_path):
    col, site, ctx, _ = world
    plan = run_import(ctx, "imp-hardlink", str(col.root), "hardlink", False)
    placed = [i for i in plan.items if i.action == PLACE]
    assert len(placed) > 150 and all(os.path.samefile(i.source, i.target) for i in placed)
    before = tree(tmp_path)
    for n, mode in enumerate(("copy", "hardlink", "copy")):
        plan = run_import(ctx, f"imp-again{n}", str(col.root), mode, False)
        assert tree(tmp_path) == before and plan.counts()["place"] == 0 and plan.counts()["done"] == len(placed)


def test_copy_leaves_the_collection_and_copies_exactly(world, tmp_path):
    col, site, ctx, _ = world
    plan = run_import(ctx, "imp-copy", str(col.root), "copy", False)
    placed = [i for i in plan.items if i.action == PLACE]
    assert len(placed) > 150
    assert all(i.target.read_bytes() == i.source.read_bytes() and not os.path.samefile(i.source, i.target)
               for i in placed)
    assert not list((tmp_path / "data").rglob(".*.tmp"))


def test_in_place_writes_nfo_and_artwork_beside_the_file(tmp_path, r, redis_url):
    root = tmp_path / "old"
    (root / "x").mkdir(parents=True)
    video = root / "x" / "[site.com]demo-001 1080p.mp4"
    video.write_bytes(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    try:
        plan = run_import(ctx, "imp-inplace", str(root), "in-place", False)
        assert plan.counts()["place"] == 1
        assert sorted(p.name for p in video.parent.iterdir()) == sorted(
            video.stem + s for s in (".mp4", ".nfo", ".jpg", "-poster.jpg", "-fanart.jpg"))
        assert b"<movie>" in video.with_suffix(".nfo").read_bytes()
        # The library knows the file it left in place (the import record names it).
        assert ctx.store.videos(parse("DEMO-001")) == [video]
        before = tree(tmp_path)
        again = run_import(ctx, "imp-inplace2", str(root), "in-place", False)
        assert again.counts()["done"] == 1 and tree(tmp_path) == before
    finally:
        ctx.redis.close()
        site.stop()


class Killed(BaseException):
    """Stands for SIGKILL between placing a title's files and writing its metadata."""


def test_the_journal_finishes_a_title_killed_after_its_files_moved(world, tmp_path):
    col, site, ctx, _ = world

    class DiesOnce(ServiceHooks):
        def finish(self, avid):
            raise Killed()

    root = check_source(col.root, ctx.store, "move")
    plan = build(root, ctx.store, "move")
    with pytest.raises(Killed):
        Importer(ctx.store, DiesOnce(ctx, "imp-k")).run(plan)
    (entry,) = Importer(ctx.store, ServiceHooks(ctx, "imp-k")).pending()
    avid = parse(entry["avid"])
    assert all(Path(f["target"]).exists() for f in entry["files"])  # moved, out of the collection
    assert ctx.store.read_meta(avid)["import"]["state"] == "placing"
    ctx.redis.delete(claim_key(avid.code))  # the killed process's claim (the sweep ends its job)

    plan = run_import(ctx, "imp-k2", str(col.root), "move", False)
    assert ctx.store.read_meta(avid)["import"]["state"] == "done" and ctx.store.nfo(avid).is_file()
    assert not Importer(ctx.store, ServiceHooks(ctx, "imp-k3")).pending()
    # Every other title of the collection arrived in the second run.
    for e in col.files.values():
        if e.action == PLACE:
            assert (tmp_path / "data" / e.avid / e.target).is_file()


def _cli(cfg_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "import", *args, "--config", str(cfg_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_cli_import_killed_midway_then_run_again_completes(world, tmp_path):
    col, site, ctx, cfg_path = world
    # One title's catalogue pages hang, so the first run is surely killed in the middle.
    # The walk takes the top folder's files in name order, then the folders: a "www.site.net_…"
    # name comes after most titles and before the parts in multi/ and sub/.
    stuck = min(e.avid for rel, e in col.files.items() if rel.startswith("www.") and e.action == PLACE)
    for name in ctx.config.catalogues:
        site.set_scenario(name, "timeout", avid=stuck)
    proc = _cli(cfg_path, str(col.root))
    try:
        wait_for(lambda: ctx.redis.get(claim_key(stuck)), 120, 0.05, f"the import to reach {stuck}")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop_group(proc)
    placed = [(rel, e) for rel, e in col.files.items() if e.action == PLACE]
    moved = [rel for rel, e in placed if (tmp_path / "data" / e.avid / e.target).exists()]
    assert 0 < len(moved) < len(placed)  # killed mid-way
    assert all(not (col.root / rel).exists() for rel in moved)
    for name in ctx.config.catalogues:
        site.set_scenario(name, None, avid=stuck)

    again = _cli(cfg_path, str(col.root))
    try:
        out, _ = again.communicate(timeout=300)
    finally:
        stop_group(again)
    assert again.returncode == 0, out
    assert "import of " in out and "→" in out
    plan = build(check_source(col.root, ctx.store, "move"), ctx.store, "move")
    for rel, want in col.files.items():
        if want.action == PLACE:
            assert (tmp_path / "data" / want.avid / want.target).is_file(), rel
            assert ctx.store.read_meta(parse(want.avid))["import"]["state"] == "done", rel
    # What a new run would still try are the titles no catalogue has (known only by asking).
    left = {str(i.source.relative_to(col.root)) for i in plan.items if i.action == PLACE}
    assert left and all(col.files[rel].action == "skipped" for rel in left)
    assert not list(ctx.redis.scan_iter(match=claim_key("*")))


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path):
    from gateway.cli.main import main as cli_main

    col = make_collection(tmp_path / "old", 40)
    before = tree(tmp_path)
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        rc = cli_main(["import", str(col.root), "--dry-run", "--data-dir", str(tmp_path / "data")])
    assert rc == 0 and tree(tmp_path) == before
    text = out.getvalue()
    for rel, want in col.files.items():
        line = next(ln for ln in text.splitlines() if f" {rel}" in ln)
        if want.action == PLACE:
            assert line.startswith("would place:") and f"→ {want.avid}" in line and want.target in line
        elif want.action == "skipped" and want.avid:
            # A dry run asks no catalogue: a code none of them knows is found out by the import.
            assert line.startswith("would place:") and f"→ {want.avid}" in line
        else:
            assert want.reason in line, line
    assert "plan of" in text.splitlines()[-1]
    err = io.StringIO()
    from contextlib import redirect_stderr

    with redirect_stderr(err):
        assert cli_main(["import", str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "is not a folder" in err.getvalue()


@pytest.fixture
def other_device(tmp_path):
    """A folder on another file system than tmp_path (/dev/shm is a tmpfs), removed after."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        needs("no second file system to cross (/dev/shm missing or on the same device)")
    import tempfile

    d = Path(tempfile.mkdtemp(dir=shm, prefix="nassav-import-test-"))
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def test_across_devices_hardlink_is_refused_and_move_copies(other_device, tmp_path):
    store = ResourceStore(tmp_path / "data")
    with pytest.raises(ImportRefused, match="hardlinks cannot cross devices.*use --mode copy or move"):
        check_source(other_device, store, "hardlink")
    src = other_device / "ABC-123.mp4"
    src.write_bytes(tiny_videos()[0].read_bytes())
    with pytest.raises(OSError, match="hardlinks cannot cross devices"):
        place(src, tmp_path / "lib" / "ABC-123.mp4", "hardlink")
    assert not (tmp_path / "lib" / "ABC-123.mp4").exists() and src.exists()
    data = src.read_bytes()
    place(src, tmp_path / "lib" / "ABC-123.mp4", "move")
    assert not src.exists() and (tmp_path / "lib" / "ABC-123.mp4").read_bytes() == data
    assert not list((tmp_path / "lib").glob(".*"))


def test_the_sweeps_message_ends_an_abandoned_import_job(r, redis_url, tmp_path):
    from dramatiq.brokers.stub import StubBroker

    from actors.registry import declare

    cfg = load(None, {}, data_dir=str(tmp_path / "data"), redis_url=redis_url)
    ctx = Context.create(cfg, redis_url)
    try:
        actors = declare(StubBroker(), cfg, lambda: ctx)
        job = ctx.jobs.submit("ABC-123", "import", fields={"stage": "import", "status": "running"})
        actors.by_name["import"].fn("ABC-123", job.job_id)  # what Sweeper.requeue sends
        rec = ctx.jobs.get(job.job_id)
        assert rec["status"] == "failed" and "run the import again" in rec["message"]
        assert ctx.redis.get(claim_key("ABC-123")) is None
    finally:
        ctx.redis.close()


def test_a_title_with_a_job_in_progress_is_left_for_later(tmp_path, r, redis_url):
    root = tmp_path / "old"
    root.mkdir()
    v = tiny_videos()
    (root / "DEMO-001.mp4").write_bytes(v[0].read_bytes())
    (root / "demo002.mkv").write_bytes(v[1].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)
    try:
        download = ctx.jobs.submit("DEMO-001", "download")  # a download is running for it
        plan = run_import(ctx, "imp-busy", str(root), "move", False)
        got = {i.source.name: i for i in plan.items}
        assert got["DEMO-001.mp4"].action == "skipped" and "in progress" in got["DEMO-001.mp4"].reason
        assert (root / "DEMO-001.mp4").exists() and ctx.redis.get(claim_key("DEMO-001")) == download.job_id
        assert got["demo002.mkv"].action == PLACE and (tmp_path / "data" / "DEMO-002" / "DEMO-002.mkv").is_file()
        ctx.jobs.finish(download.job_id, "DEMO-001", "completed")
        again = run_import(ctx, "imp-busy2", str(root), "move", False)
        assert {i.source.name: i.action for i in again.items} == {"DEMO-001.mp4": PLACE}
    finally:
        ctx.redis.close()
        site.stop()


def test_import_roots_must_be_absolute():
    from pipeline.errors import ConfigError

    assert load(None, {}, library={"import_roots": ["/srv/old"]}).library.import_roots == ("/srv/old",)
    with pytest.raises(ConfigError, match="library.import_roots.*absolute folder paths"):
        load(None, {}, library={"import_roots": ["old"]})


def test_the_cli_finds_the_embedded_redis_of_a_running_service(tmp_path, monkeypatch):
    for name in ("REDIS_URL", "NASSAV_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    from contextlib import redirect_stderr, redirect_stdout

    from gateway.cli.main import main as cli_main
    from pipeline.embedded_redis import EmbeddedRedis

    root, data = tmp_path / "old", tmp_path / "data"
    root.mkdir()
    (root / "notes.txt").write_text("not a video")
    args = ["import", str(root), "--data-dir", str(data)]
    err = io.StringIO()
    with redirect_stderr(err):
        assert cli_main(args) == 2  # no service running, no Redis configured
    assert "nassav up" in err.getvalue() and "--dry-run needs none" in err.getvalue()
    with EmbeddedRedis(data):  # what `nassav up` starts
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli_main(args) == 0
    assert "skipped: notes.txt: not a video file (.txt)" in out.getvalue()


# Root reads every folder; without these two capabilities it reads as any user does.
_AS_A_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
              "--inh-caps", "-dac_override,-dac_read_search"]


def test_an_unreadable_folder_is_reported(tmp_path):
    root = tmp_path / "old"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "ABC-123.mp4").write_bytes(b"x")
    (root / "locked").chmod(0)
    code = ("import json, sys; from pathlib import Path; from pipeline.import_plan import build; "
            "from pipeline.store import ResourceStore; "
            "plan = build(Path(sys.argv[1]), ResourceStore(Path(sys.argv[2])), 'move'); "
            "print(json.dumps([(i.source.name, i.action, i.reason) for i in plan.items]))")
    prefix = _AS_A_USER if os.geteuid() == 0 else []
    try:
        got = subprocess.run([*prefix, sys.executable, "-c", code, str(root), str(tmp_path / "data")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        (root / "locked").chmod(0o755)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == [["locked", "skipped", "a folder that cannot be read: Permission denied"]]


def test_a_title_the_submit_path_refuses_is_left_with_the_reason(tmp_path, r, redis_url):
    from pipeline.errors import NassavError

    root = tmp_path / "old"
    root.mkdir()
    (root / "DEMO-001.mp4").write_bytes(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                redis_url=redis_url), {}), redis_url)

    class Refusing(ServiceHooks):
        def take(self, avid):
            raise NassavError(f"{avid.code} is on the blocklist")

    try:
        plan = build(check_source(root, ctx.store, "move"), ctx.store, "move")
        Importer(ctx.store, Refusing(ctx, "imp-refused")).run(plan)
        (item,) = plan.items
        assert item.action == "skipped" and item.reason == "refused: DEMO-001 is on the blocklist"
        assert (root / "DEMO-001.mp4").exists() and not (tmp_path / "data" / "DEMO-001").exists()
    finally:
        ctx.redis.close()
        site.stop()
