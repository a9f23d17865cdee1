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
