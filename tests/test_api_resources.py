"""The library routes on a real Redis: list/search/filter/sort, metadata, preview, covers, user
state, add/refresh/delete, batch, actors and genres. Bad input is always a 4xx."""

from __future__ import annotations

import email.utils
import io
import json

import pytest
from PIL import Image

from tests.api_helpers import gateway, put_resource


@pytest.fixture
def lib(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001", title="Rainy Office Day", actors=("Aoi Test", "Mei Sample"),
                 genres=("Drama", "Office"), source="missav", video=True, created_at=1000)
    put_resource(data, "ABC-002", title="Summer Beach", actors=("Mei Sample",), genres=("Comedy",),
                 source="jable", created_at=2000)
    put_resource(data, "XYZ-010", title="Night Train", actors=("Rin Fixture",), genres=("Drama",),
                 source="memo", video=True, created_at=3000, user={"watched": True, "is_favorite": False})
    with gateway(data, redis_url) as c:
        c.data = data
        yield c


def r_job(client, job_id):
    from pipeline.jobs import Jobs
    from pipeline.redis_client import connect
    with connect(client.st.redis_url) as c:
        return Jobs(c).get(job_id)


def avids(body):
    return [i["avid"] for i in body["data"]]


def test_list_filters_search_sort_and_pagination(lib):
    body = lib.get("/api/resources/").json()
    assert body["code"] == 200 and body["pagination"] == {"total": 3, "page": 1, "page_size": 20, "pages": 1}
    assert avids(body) == ["XYZ-010", "ABC-002", "ABC-001"]  # newest metadata first
    item = body["data"][0]
    for key in ("avid", "original_title", "source_title", "translated_title", "source", "release_date",
                "has_video", "watched", "is_favorite", "metadata_create_time", "metadata_update_time",
                "video_create_time", "genres", "thumbnail_url"):
        assert key in item, key
    assert item["thumbnail_url"] == "/api/resource/cover?avid=XYZ-010&size=small"
    assert item["watched"] is True  # from the JSON's user block, at rebuild

    get = lambda q: avids(lib.get("/api/resources/?" + q).json())  # noqa: E731
    assert get("status=downloaded&sort_by=avid&order=asc") == ["ABC-001", "XYZ-010"]
    assert get("status=pending") == ["ABC-002"]
    assert get("search=office") == ["ABC-001"]
    assert get("search=MEI+sample&sort_by=avid&order=asc") == ["ABC-001", "ABC-002"]  # actors, any case
    assert get("search=xyz-01") == ["XYZ-010"]
    assert get("search=rainy+train") == []  # every word must match
    assert get("search=zz") == []  # short words work too (no trigram)
    for odd in ("%00abc", "%22", "NEAR(a+b)", "abc*", "%25%25", "(((", "col%3Aabc", "a%0Ab"):
        assert lib.get("/api/resources/?search=" + odd).status_code == 200, odd
    assert get("genre=Drama&sort_by=avid&order=desc") == ["XYZ-010", "ABC-001"]
    assert get("actor=Rin+Fixture") == ["XYZ-010"]
    assert get("source=jable") == ["ABC-002"]
    assert get("watched=true") == ["XYZ-010"]
    assert get("watched=false&is_favorite=false&sort_by=source&order=asc") == ["ABC-002", "ABC-001"]
    assert get("sort_by=video_create_time&order=asc") == ["ABC-001", "XYZ-010", "ABC-002"]  # no video last

    page = lib.get("/api/resources/?page=2&page_size=2&sort_by=avid&order=asc").json()
    assert avids(page) == ["XYZ-010"] and page["pagination"] == {"total": 3, "page": 2, "page_size": 2, "pages": 2}
    past = lib.get("/api/resources/?page=9&page_size=2").json()
    assert past["data"] == [] and past["pagination"]["total"] == 3
    assert avids(lib.get("/nassav/api/resources/?status=pending").json()) == ["ABC-002"]
    assert lib.get("/nassav/api/resources/?status=pending").json()["data"][0]["thumbnail_url"].startswith(
        "/nassav/api/resource/cover")


@pytest.mark.parametrize("query", ["sort_by=title", "order=up", "page=0", "page=x", "page_size=101",
                                   "page_size=-1", "status=done", "watched=maybe", "is_favorite=2"])
def test_list_bad_parameters_are_400(lib, query):
    r = lib.get("/api/resources/?" + query)
    assert r.status_code == 400 and r.json()["code"] == 400, r.text
    name = query.split("=")[0]
    assert name in r.json()["message"]


def test_metadata_and_preview(lib):
    body = lib.get("/api/resource/metadata?avid=abc001").json()
    assert body["code"] == 200 and body["data"]["avid"] == "ABC-001"
    assert body["data"]["has_video"] is True and {"name": "ABC-001.mp4", "bytes": 1024} in body["data"]["files"]
    assert lib.get("/api/resource/metadata?avid=NOPE-999").status_code == 404
    r = lib.get("/api/resource/metadata?avid=../etc")
    assert r.status_code == 400 and "accepted forms" in r.json()["message"]
    assert lib.get("/api/resource/metadata").status_code == 400

    p = lib.get("/api/resource/ABC-001/preview").json()["data"]
    assert p["avid"] == "ABC-001" and set(p["covers"]) == {"small", "medium", "large"}
    assert p["actors"][0]["name"] == "Aoi Test" and p["video"]["bytes"] == 1024
    assert lib.get("/api/resource/NOPE-999/preview").status_code == 404
    assert lib.get("/api/resource/bad!!/preview").status_code == 400


def test_cover_sizes_validators_and_304(lib):
    for size, width in (("small", 200), ("medium", 600), ("large", 1200)):
        r = lib.get(f"/api/resource/cover?avid=ABC-001&size={size}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).width == width
        etag, lm = r.headers["etag"], r.headers["last-modified"]
        assert lib.get(f"/api/resource/cover?avid=ABC-001&size={size}",
                       headers={"If-None-Match": etag}).status_code == 304
        assert lib.get(f"/api/resource/cover?avid=ABC-001&size={size}",
                       headers={"If-Modified-Since": lm}).status_code == 304
    assert (lib.data / ".cache" / "covers" / "ABC-001-small.jpg").exists()  # made once, cached
    original = lib.get("/api/resource/cover?avid=ABC-001")
    assert Image.open(io.BytesIO(original.content)).width == 1600
    stale = email.utils.formatdate(0, usegmt=True)
    assert lib.get("/api/resource/cover?avid=ABC-001&size=small",
                   headers={"If-Modified-Since": stale}).status_code == 200
    assert lib.get("/api/resource/cover?avid=ABC-001&size=small",
                   headers={"If-None-Match": '"other"'}).status_code == 200
    assert lib.get("/api/resource/cover?avid=ABC-001&size=huge").status_code == 400
    assert lib.get("/api/resource/cover?avid=NOPE-999&size=small").status_code == 404
    assert lib.get("/api/resource/cover?avid=&size=small").status_code == 400
    assert lib.get("/api/resource/cover?avid=ABC-001&size=small",
                   headers={"If-Modified-Since": "not a date"}).status_code == 200


def test_user_state_is_kept_in_index_and_json(lib):
    r = lib.patch("/api/resource/abc-002/status", json={"is_favorite": True})
    assert r.status_code == 200 and r.json()["data"]["is_favorite"] is True
    assert avids(lib.get("/api/resources/?is_favorite=true").json()) == ["ABC-002"]
    meta = json.loads((lib.data / "ABC-002" / "ABC-002.json").read_text())
    assert meta["user"]["is_favorite"] is True and meta["updated_at"] == 2000  # metadata time untouched
    assert lib.patch("/api/resource/ABC-002/status", json={}).status_code == 400
    assert lib.patch("/api/resource/ABC-002/status", json={"watched": "yes"}).status_code == 400
    assert lib.patch("/api/resource/ABC-002/status", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert lib.patch("/api/resource/ABC-002/status", json=[1]).status_code == 400
    assert lib.patch("/api/resource/NOPE-999/status", json={"watched": True}).status_code == 404


def test_add_refresh_and_delete(lib):
    r = lib.post("/api/resource", json={"avid": "new-001", "source": "any"})
    assert r.status_code == 202 and r.json()["data"]["kind"] == "metadata"
    job = r.json()["data"]["job_id"]
    assert lib.post("/api/resource", json={"avid": "NEW-001"}).json()["data"]["job_id"] == job  # 409 same job
    assert lib.post("/api/resource", json={"avid": "ABC-001"}).status_code == 409  # already there
    assert lib.post("/api/resource", json={"avid": "NEW-002", "source": "nowhere"}).status_code == 400
    assert lib.post("/api/resource", json={"avid": 12}).status_code == 400
    assert lib.post("/api/resource", json={}).status_code == 400
    assert lib.post("/api/resource", content=b"[]", headers={"content-type": "application/json"}).status_code == 400
    r = lib.post("/api/resource", json={"avid": "NEW-003", "source": "jable"})
    assert r.status_code == 202 and r.json()["data"]["source"] == "jable"
    assert r_job(lib, r.json()["data"]["job_id"])["source_pref"] == "jable"  # set before any worker sees it
    assert lib.post("/api/resource/refresh/ABC-001").status_code == 202
    assert lib.post("/api/resource/refresh/A").status_code == 400

    # A live job holds ABC-001 now: deleting under it is refused.
    r = lib.delete("/api/resource/ABC-001")
    assert r.status_code == 409 and "cancel" in r.json()["message"]
    r = lib.delete("/api/resource/XYZ-010")
    assert r.status_code == 200
    assert sorted(r.json()["data"]["deleted_files"]) == ["XYZ-010/XYZ-010.jpg", "XYZ-010/XYZ-010.json",
                                                         "XYZ-010/XYZ-010.mp4"]
    assert not (lib.data / "XYZ-010").exists()
    assert "XYZ-010" not in avids(lib.get("/api/resources/").json())
    assert lib.delete("/api/resource/XYZ-010").status_code == 404
    assert lib.delete("/api/resource/x").status_code == 400


def test_batch_actions(lib):
    r = lib.post("/api/resources/batch", json={"actions": [
        {"action": "add", "avid": "BAT-001"},
        {"action": "status", "avid": "ABC-002", "watched": True},
        {"action": "download", "avid": "ABC-001"},
        {"action": "explode", "avid": "ABC-001"},
        {"action": "add", "avid": "../../x"},
        "nonsense",
    ]})
    assert r.status_code == 202
    codes = [x["code"] for x in r.json()["data"]["results"]]
    assert codes == [202, 200, 409, 400, 400, 400]
    assert r.json()["data"]["accepted"] == 2
    assert lib.post("/api/resources/batch", json={"actions": []}).status_code == 400
    assert lib.post("/api/resources/batch", json={"actions": [{}] * 501}).status_code == 400
    assert lib.post("/api/resources/batch", json={"nope": 1}).status_code == 400


def test_actors_genres_and_avatars(lib):
    body = lib.get("/api/actors/").json()
    assert body["pagination"]["total"] == 3
    mei = next(a for a in body["data"] if a["name"] == "Mei Sample")
    assert mei["resource_count"] == 2 and mei["avatar"] == f"/api/actors/{mei['id']}/avatar"
    assert [a["name"] for a in lib.get("/api/actors/?search=rin").json()["data"]] == ["Rin Fixture"]
    assert lib.get("/api/actors/?page_size=0").status_code == 400
    r = lib.get(f"/api/actors/{mei['id']}/avatar", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].endswith("/Mei%20Sample.jpg")
    photo = lib.data / "ABC-002" / ".actors" / "Mei_Sample.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8jpeg")
    r = lib.get(f"/api/actors/{mei['id']}/avatar", follow_redirects=False)
    assert r.status_code == 200 and r.content == b"\xff\xd8jpeg"
    assert lib.get("/api/actors/99999/avatar").status_code == 404
    assert lib.get("/api/actors/" + "9" * 40 + "/avatar").status_code == 404
    assert lib.get("/api/resources/?actor=" + "9" * 40).json()["data"] == []
    assert lib.get("/api/resources/?genre=" + "1" * 30).json()["data"] == []
    assert lib.get("/api/actors/abc/avatar").status_code == 404

    genres = lib.get("/api/genres/").json()["data"]
    assert {"name": "Drama", "resource_count": 2} == {k: genres[0][k] for k in ("name", "resource_count")}
    assert set(genres[0]) == {"id", "name", "resource_count"}
    assert lib.get("/api/genres/?page=-3").status_code == 400
