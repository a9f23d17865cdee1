"""Deleting only a title's video on a real Redis: metadata, covers and NFO stay, the index
learns the title has no video, and the refusals (live job, no video, other edition) are 4xx."""

from __future__ import annotations

import pytest

from tests.api_helpers import gateway, put_resource


@pytest.fixture
def lib(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001", title="Rainy Office Day", video=True, created_at=1000)
    put_resource(data, "ABC-002", title="Summer Beach", created_at=2000)
    with gateway(data, redis_url) as c:
        c.data = data
        yield c


def row(lib, avid):
    items = lib.get("/api/resources/?search=" + avid).json()["data"]
    return next(i for i in items if i["avid"] == avid)


def test_delete_video_keeps_the_rest(lib):
    assert row(lib, "ABC-001")["has_video"] is True
    parts = lib.data / ".parts" / "ABC-001"
    parts.mkdir(parents=True)
    (parts / "seg-00001.ts").write_bytes(b"x" * 10)
    before = sorted(p.name for p in (lib.data / "ABC-001").iterdir())
    r = lib.delete("/api/resource/abc-001/video")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["deleted_files"] == [".parts/ABC-001/seg-00001.ts", "ABC-001/ABC-001.mp4"]
    after = sorted(p.name for p in (lib.data / "ABC-001").iterdir())
    assert after == [n for n in before if n != "ABC-001.mp4"] and "ABC-001.json" in after
    assert not parts.exists()
    assert row(lib, "ABC-001")["has_video"] is False
    assert lib.get("/api/resource/metadata?avid=ABC-001").json()["data"]["has_video"] is False
    again = lib.delete("/api/resource/ABC-001/video")
    assert again.status_code == 404 and "no video" in again.json()["message"]


def test_delete_video_refusals(lib):
    assert lib.delete("/api/resource/ABC-002/video").status_code == 404  # metadata only
    assert lib.delete("/api/resource/A/video").status_code == 400
    r = lib.delete("/api/resource/ABC-001-C/video")  # the folder holds the plain edition
    assert r.status_code == 404 and "ABC-001" in r.json()["message"]
    assert (lib.data / "ABC-001" / "ABC-001.mp4").exists()
    assert lib.post("/api/resource/refresh/ABC-001").status_code == 202
    r = lib.delete("/api/resource/ABC-001/video")
    assert r.status_code == 409 and "cancel" in r.json()["message"]
    assert (lib.data / "ABC-001" / "ABC-001.mp4").exists()


# -- streaming the video ----------------------------------------------------------------------

VIDEO = bytes(range(256)) * 40  # 10,240 bytes; every offset's byte is known


@pytest.fixture
def playable(lib):
    (lib.data / "ABC-001" / "ABC-001.mp4").write_bytes(VIDEO)
    return lib


def test_video_whole_file_with_validators(playable):
    r = playable.get("/api/resource/abc-001/video")
    assert r.status_code == 200 and r.content == VIDEO
    h = r.headers
    assert h["content-type"] == "video/mp4" and h["accept-ranges"] == "bytes"
    assert h["content-length"] == str(len(VIDEO)) and h["etag"].startswith('"ABC-001-video-')
    assert h["last-modified"].endswith(" GMT")
    head = playable.head("/api/resource/ABC-001/video")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(VIDEO)) and head.headers["etag"] == h["etag"]


def test_video_byte_ranges(playable):
    url = "/api/resource/ABC-001/video"
    for spec, lo, hi in (("bytes=100-199", 100, 199), ("bytes=10000-", 10000, 10239),
                         ("bytes=-40", 10200, 10239), ("bytes=0-99999", 0, 10239)):
        r = playable.get(url, headers={"Range": spec})
        assert r.status_code == 206, (spec, r.text)
        assert r.headers["content-range"] == f"bytes {lo}-{hi}/{len(VIDEO)}", spec
        assert r.content == VIDEO[lo:hi + 1], spec
        assert r.headers["accept-ranges"] == "bytes" and r.headers["etag"]
    many = playable.get(url, headers={"Range": "bytes=0-9, 20-29"})
    assert many.status_code == 206 and many.headers["content-type"].startswith("multipart/byteranges")
    assert VIDEO[0:10] in many.content and VIDEO[20:30] in many.content
    head = playable.head(url, headers={"Range": "bytes=100-199"})
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-range"] == f"bytes 100-199/{len(VIDEO)}"


def test_video_conditional_requests(playable):
    url = "/api/resource/ABC-001/video"
    first = playable.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = playable.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert playable.get(url, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert playable.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert playable.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    # If-Range: the range only while the client's copy is still current, else the whole file.
    r = playable.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206 and r.content == VIDEO[:10]
    r = playable.get(url, headers={"Range": "bytes=0-9", "If-Range": modified})
    assert r.status_code == 206
    r = playable.get(url, headers={"Range": "bytes=0-9", "If-Range": '"ABC-001-video-stale"'})
    assert r.status_code == 200 and r.content == VIDEO
    # A new file is a new ETag: the old one no longer matches.
    (playable.data / "ABC-001" / "ABC-001.mp4").write_bytes(VIDEO + b"more")
    again = playable.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag and again.content.endswith(b"more")


def test_video_refusals(playable):
    url = "/api/resource/ABC-001/video"
    r = playable.get(url, headers={"Range": f"bytes={len(VIDEO)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(VIDEO)}"
    assert "past the end" in r.json()["message"] and r.json()["data"]["bytes"] == len(VIDEO)
    assert playable.get(url, headers={"Range": "bytes=-0"}).status_code == 416
    for bad in ("items=0-9", "bytes=abc", "bytes=9-3", "bytes=", "0-9", "bytes=1-2,x"):
        r = playable.get(url, headers={"Range": bad})
        assert r.status_code == 400, bad
        assert "bytes=START-END" in r.json()["message"], bad
    r = playable.get("/api/resource/ABC-002/video")  # metadata only
    assert r.status_code == 404 and "ABC-002" in r.json()["message"]
    assert playable.head("/api/resource/ABC-002/video").status_code == 404
    assert playable.get("/api/resource/ZZZ-404/video").status_code == 404
    r = playable.get("/api/resource/A/video")
    assert r.status_code == 400 and "ABC-123" in r.json()["message"]
    r = playable.get("/api/resource/ABC-001-C/video")  # the folder holds the plain edition
    assert r.status_code == 404 and "/api/resource/ABC-001/video" in r.json()["message"]
    (playable.data / "ABC-002" / "ABC-002.mp4").write_bytes(b"")  # an empty file is no video
    assert playable.get("/api/resource/ABC-002/video").status_code == 404


def test_video_with_a_token_in_the_query(tmp_path, r, redis_url):
    # A <video> element cannot send an Authorization header: ?token= must do.
    data = tmp_path / "data"
    put_resource(data, "ABC-001", video=True)
    with gateway(data, redis_url, api_token="a-long-enough-token") as c:
        assert c.get("/api/resource/ABC-001/video").status_code == 401
        ok = c.get("/api/resource/ABC-001/video?token=a-long-enough-token", headers={"Range": "bytes=0-9"})
        assert ok.status_code == 206 and ok.content == b"\x00" * 10
