"""Every video file an import can place is the title's video: another container (``.mkv``),
parts (``-cd1``, ``-cd2``), a file left in place. Real tiny videos made with the bundled
ffmpeg, imported against the fixture site on a real Redis, then seen by the index, the media
API, the download stage and the delete."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from actors import stages
from actors.context import Context
from actors.importing import run_import
from pipeline.avid import parse
from pipeline.config import load
from pipeline.store import ResourceStore
from tests.api_helpers import gateway
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


def mkv(src: Path, dst: Path) -> Path:
    """A real Matroska file: ``src`` remuxed by the bundled ffmpeg."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(src), "-c", "copy", "-f", "matroska", str(dst)], check=True)
    return dst


# -- the store alone ---------------------------------------------------------------------------

def test_videos_from_the_folder_and_from_the_record(tmp_path):
    store = ResourceStore(tmp_path / "data")
    v = tiny_videos()
    avid = parse("ABC-123")
    d = store.dir(avid)
    d.mkdir(parents=True)
    assert store.videos(avid) == [] and not store.has_video(avid)
    assert store.video(avid) == d / "ABC-123.mp4"  # where a download would go

    # Nothing recorded: the folder's own names, parts in order; temp and empty files are not videos.
    for n in (2, 1):
        (d / f"ABC-123-cd{n}.avi").write_bytes(v[n - 1].read_bytes())
    (d / ".ABC-123.mp4.77.tmp").write_bytes(b"x" * 10)
    (d / "ABC-123.wmv").write_bytes(b"")
    (d / "ABC-1234.mp4").write_bytes(b"x")  # another code's name
    assert store.videos(avid) == [d / "ABC-123-cd1.avi", d / "ABC-123-cd2.avi"]
    assert store.has_video(avid) and store.video(avid) == d / "ABC-123-cd1.avi"

    # The record decides the order and names; names leaving the folder are not taken from it.
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(v[0].read_bytes())
    store.write_meta(avid, {"video": {"file": "ABC-123-cd2.avi", "parts": [
        {"file": "ABC-123-cd2.avi", "part": 1}, {"file": str(outside), "part": 2},
        {"file": "../ABC-123-cd1.avi", "part": 3}, {"file": "ABC-123.json", "part": 4}]}})
    assert store.videos(avid) == [d / "ABC-123-cd2.avi"]

    # An absolute path counts only when the import record says it was imported there in place.
    store.update_meta(avid, **{"import": {"mode": "in-place", "files": [str(outside)]}})
    assert store.videos(avid) == [d / "ABC-123-cd2.avi", outside]
    store.update_meta(avid, **{"import": {"mode": "copy", "files": [str(outside)]}})
    assert store.videos(avid) == [d / "ABC-123-cd2.avi"]

    # The record's files all gone: back to what the folder holds.
    (d / "ABC-123-cd2.avi").unlink()
    assert store.videos(avid) == [d / "ABC-123-cd1.avi"]


def test_delete_video_removes_every_part(tmp_path):
    store = ResourceStore(tmp_path / "data")
    avid = parse("ABC-123")
    d = store.dir(avid)
    d.mkdir(parents=True)
    for n in (1, 2):
        (d / f"ABC-123-cd{n}.mkv").write_bytes(b"v" * 100)
    store.write_meta(avid, {"title": "t"})
    assert store.delete_video(avid) == ["ABC-123/ABC-123-cd1.mkv", "ABC-123/ABC-123-cd2.mkv"]
    assert sorted(p.name for p in d.iterdir()) == ["ABC-123.json"]
    assert store.delete_video(avid) is None


# -- imported, then served, skipped by a download, deleted -------------------------------------

@pytest.fixture
def imported(tmp_path, r, redis_url):
    """DEMO-001 as one .mkv, DEMO-002 in two parts (both moved into the library), DEMO-003 an
    .mkv left in place; the fixture site serves all three (streams included)."""
    v = tiny_videos()
    old, kept = tmp_path / "old", tmp_path / "kept"
    mkv(v[0], old / "demo001.mkv")
    old.joinpath("sub").mkdir()
    (old / "sub" / "DEMO-002-CD1.mp4").write_bytes(v[1].read_bytes())
    (old / "sub" / "demo-002-cd2.mp4").write_bytes(v[2].read_bytes())
    in_place = mkv(v[2], kept / "[x.com] DEMO-003.mkv")
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002", "DEMO-003"), stream_kind="clear",
                             duration_s=2.0, segment_s=1.0)
    data = tmp_path / "data"
    ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url), {}),
                         redis_url)
    try:
        assert run_import(ctx, "imp-1", str(old), "move", False).counts()["place"] == 3
        assert run_import(ctx, "imp-2", str(kept), "in-place", False).counts()["place"] == 1
        yield ctx, site, data, in_place
    finally:
        ctx.redis.close()
        site.stop()


def test_the_index_and_the_api_know_every_imported_video(imported, redis_url):
    ctx, _, data, in_place = imported
    one, two = data / "DEMO-001" / "DEMO-001.mkv", [data / "DEMO-002" / f"DEMO-002-cd{n}.mp4" for n in (1, 2)]
    assert ctx.store.videos(parse("DEMO-001")) == [one]
    assert ctx.store.videos(parse("DEMO-002")) == two
    assert ctx.store.videos(parse("DEMO-003")) == [in_place]
    assert not (data / "DEMO-001" / "DEMO-001.mp4").exists()
    with gateway(data, redis_url) as c:
        rows = {i["avid"]: i for i in c.get("/api/resources/?page_size=50").json()["data"]}
        assert {a: rows[a]["has_video"] for a in ("DEMO-001", "DEMO-002", "DEMO-003")} == dict.fromkeys(
            ("DEMO-001", "DEMO-002", "DEMO-003"), True)
        assert rows["DEMO-002"]["video_bytes"] == sum(p.stat().st_size for p in two)

        r = c.get("/api/resource/demo-001/video")
        assert r.status_code == 200 and r.headers["content-type"] == "video/x-matroska"
        assert r.content == one.read_bytes() and r.content[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic
        assert c.head("/api/resource/DEMO-001/video").headers["content-length"] == str(one.stat().st_size)
        assert c.get("/api/resource/DEMO-001/video", headers={"Range": "bytes=0-3"}).content == r.content[:4]

        first, second = c.get("/api/resource/DEMO-002/video"), c.get("/api/resource/DEMO-002/video?part=2")
        assert first.content == two[0].read_bytes() and second.content == two[1].read_bytes()
        assert first.headers["content-type"] == "video/mp4" and first.headers["x-video-parts"] == "2"
        assert first.headers["etag"] != second.headers["etag"]
        assert c.get("/api/resource/DEMO-002/video?part=1").content == first.content
        gone = c.get("/api/resource/DEMO-002/video?part=3")
        assert gone.status_code == 404 and "part=2" in gone.json()["message"]
        for bad in ("0", "x", "-1", "1.5"):
            refused = c.get(f"/api/resource/DEMO-002/video?part={bad}")
            assert refused.status_code == 400 and "part must be a whole number" in refused.json()["message"]

        assert c.get("/api/resource/DEMO-003/video").content == in_place.read_bytes()
        meta = c.get("/api/resource/metadata?avid=DEMO-003").json()["data"]
        assert meta["has_video"] is True and meta["videos"] == [
            {"part": 1, "file": str(in_place), "url": "/api/resource/DEMO-003/video"}]
        meta = c.get("/api/resource/metadata?avid=DEMO-002").json()["data"]
        assert [v["file"] for v in meta["videos"]] == ["DEMO-002-cd1.mp4", "DEMO-002-cd2.mp4"]

        # The download check: nothing is queued for a title that has its video.
        r = c.post("/api/downloads/DEMO-001")
        assert r.status_code == 409 and "already downloaded" in r.json()["message"]

        # The old client's calls: the path it copies and the file its delete names.
        abspath = c.get("/nassav/api/downloads/abspath?avid=DEMO-003").json()["data"]["abspath"]
        assert abspath == str(in_place)
        size = one.stat().st_size
        old = c.delete("/nassav/api/downloads/DEMO-001").json()["data"]
        assert old["deleted_file"] == "DEMO-001.mkv" and old["file_size"] == size and not one.exists()

        # DELETE removes both parts; the index learns it; metadata stays.
        r = c.delete("/api/resource/DEMO-002/video")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["deleted_files"] == ["DEMO-002/DEMO-002-cd1.mp4", "DEMO-002/DEMO-002-cd2.mp4"]
        assert not any(p.exists() for p in two) and (data / "DEMO-002" / "DEMO-002.json").is_file()
        row = c.get("/api/resources/?search=DEMO-002").json()["data"][0]
        assert row["has_video"] is False
        assert c.get("/api/resource/DEMO-002/video").status_code == 404


def test_a_download_of_an_imported_title_fetches_nothing(imported):
    ctx, site, data, in_place = imported
    for code in ("DEMO-001", "DEMO-002", "DEMO-003"):
        avid = parse(code)
        job = ctx.jobs.submit(code)
        before = {p: p.stat().st_mtime_ns for p in ctx.store.videos(avid)}
        stages.resolve(ctx, avid, job.job_id)
        stages.download(ctx, avid, job.job_id)
        assert {p: p.stat().st_mtime_ns for p in ctx.store.videos(avid)} == before
        assert not (data / code / f"{code}.mp4").exists() and not ctx.store.part_dir(avid).exists()
        done = [e for e in ctx.events.after("0") if e.job_id == job.job_id
                and e.type == "stage_finished" and e.stage == "download"]
        assert len(done) == 1 and done[0].data["reused"] is True
        assert done[0].data["files"] == [p.name for p in before] and "nothing downloaded" in done[0].data["message"]
    assert site.stats()["playlists"] == {} and site.stats()["segment_requests"] == {}

    # Control: with the video gone the same stage downloads the stream (the check is real).
    avid = parse("DEMO-001")
    (data / "DEMO-001" / "DEMO-001.mkv").unlink()
    job = ctx.jobs.submit("DEMO-001")
    stages.download(ctx, avid, job.job_id)
    assert ctx.store.videos(avid) == [data / "DEMO-001" / "DEMO-001.mp4"]
    assert site.stats()["segment_requests"].get("DEMO-001", 0) > 0
    assert json.loads((data / "DEMO-001" / "DEMO-001.json").read_text())["video"]["file"] == "DEMO-001.mp4"


def test_an_upgrade_replaces_imported_parts_and_leaves_an_in_place_file(tmp_path, r, redis_url):
    from actors.registry import CHAIN
    from pipeline import jobs as jobstates

    v = tiny_videos()
    old, kept = tmp_path / "old", tmp_path / "kept"
    old.mkdir()
    (old / "DEMO-002-cd1.mp4").write_bytes(v[0].read_bytes())
    (old / "DEMO-002-cd2.mp4").write_bytes(v[1].read_bytes())
    in_place = mkv(v[2], kept / "DEMO-003.mkv")
    site = FixtureSite.start(titles=("DEMO-002", "DEMO-003"), stream_kind="clear", duration_s=2.0, segment_s=1.0)
    data = tmp_path / "data"
    cfg = site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url,
                            extra={"download": {"editions": ["C", "regular"], "segment_retries": 0}})
    ctx = Context.create(load(cfg, {}), redis_url)
    try:
        assert run_import(ctx, "imp-1", str(old), "move", False).counts()["place"] == 2
        assert run_import(ctx, "imp-2", str(kept), "in-place", False).counts()["place"] == 1
        kept_bytes = in_place.read_bytes()
        for code in ("DEMO-002", "DEMO-003"):
            site.add_edition(code, "C", ["jable"])
            job = ctx.jobs.submit(code, "upgrade")
            assert CHAIN.run_inline(ctx, parse(code), job.job_id, "upgrade") == ["resolve", "download"]
            if ctx.jobs.get(job.job_id)["status"] not in jobstates.TERMINAL:
                ctx.jobs.finish(job.job_id, code, jobstates.COMPLETED)
            mp4 = data / code / f"{code}.mp4"
            assert ctx.store.videos(parse(code)) == [mp4] and ctx.store.read_meta(parse(code))["edition"] == "C"
        assert not list((data / "DEMO-002").glob("DEMO-002-cd*"))  # the parts it replaced are gone
        assert in_place.read_bytes() == kept_bytes  # the user's own file is never written over
    finally:
        ctx.redis.close()
        site.stop()
