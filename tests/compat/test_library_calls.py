"""The original client's library calls at /nassav/api, one test per call, on the real gateway and
Redis: the status and every field the client (v1.3.2, or the generation before it) reads."""

from __future__ import annotations

import json

import pytest

from tests.api_helpers import gateway, put_resource

API = "/nassav/api"


@pytest.fixture
def lib(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001", title="Rainy Office Day", actors=("Aoi Test", "Mei Sample"),
                 genres=("Drama", "Office"), source="missav", video=True, created_at=1000,
                 director="Dir One", label="Label One", series="Series One", catalogue={"name": "javbus"})
    put_resource(data, "ABC-002", title="Summer Beach", actors=("Mei Sample",), genres=("Comedy",),
                 source="jable", created_at=2000, runtime_min=95)
    put_resource(data, "XYZ-010", title="Night Train", actors=("Rin Fixture",), genres=("Drama",),
                 source="memo", video=True, created_at=3000, user={"watched": True, "is_favorite": True})
    with gateway(data, redis_url) as c:
        c.data = data
        yield c


def ok(res, code=200):
    body = res.json()
    assert res.status_code == code and body["code"] == code, (res.status_code, body)
    return body["data"]


# -- sources ----------------------------------------------------------------------------------

def test_source_list_is_names(lib):
    """Item 1: the Add page lower-cases each item; the Cookie tab maps names."""
    names = ok(lib.get(f"{API}/source/list"))
    assert names and all(isinstance(n, str) for n in names)
    assert names[0] == "missav" and set(names) == set(lib.st.config.sources)
    assert [n.lower() for n in names] == names  # .toLowerCase() works on every item


def test_cookie_list_and_masked_echo_refused(lib):
    assert ok(lib.get(f"{API}/source/cookie")) == []
    ok(lib.post(f"{API}/source/cookie", json={"source": "jable", "cookie": "cf_clearance=abcdef123; sid=42"}))
    rows = ok(lib.get(f"{API}/source/cookie"))
    assert [r["source"] for r in rows] == ["jable"]
    assert rows[0]["cookie"].startswith("cf_clearance=abcd…") and "abcdef123" not in rows[0]["cookie"]
    assert rows[0]["mtime"] and rows[0]["mtime"][:4].isdigit()
    # The client pre-fills its edit box with what the list showed: saving it back is refused.
    res = lib.post(f"{API}/source/cookie", json={"source": "jable", "cookie": rows[0]["cookie"]})
    assert res.status_code == 400 and "masked" in res.json()["message"]
    assert ok(lib.get(f"{API}/source/cookie"))[0]["cookie"] == rows[0]["cookie"]
    ok(lib.delete(f"{API}/source/cookie", params={"source": "jable"}))
    assert ok(lib.get(f"{API}/source/cookie")) == []


# -- one title --------------------------------------------------------------------------------

def test_metadata_is_flat(lib):
    """Item 4: names for source and actors, file_exists/file_size, duration, user state."""
    m = ok(lib.get(f"{API}/resource/metadata", params={"avid": "abc-001"}))
    assert m["avid"] == "ABC-001" and m["source"] == "missav"
    assert m["actors"] == ["Aoi Test", "Mei Sample"] and m["genres"] == ["Drama", "Office"]
    assert m["file_exists"] is True and m["file_size"] == 1024
    assert m["duration"] == "0分钟"  # the fixture's video is 12 s long
    assert (m["director"], m["studio"], m["label"], m["series"]) == ("Dir One", "Studio", "Label One", "Series One")
    assert m["original_title"] == "Rainy Office Day" and m["source_title"] == "ABC-001 source title"
    assert m["translated_title"] == "" and m["release_date"] == "2024-01-02"
    assert m["watched"] is False and m["is_favorite"] is False

    pending = ok(lib.get(f"{API}/resource/metadata?avid=ABC-002"))
    assert pending["file_exists"] is False and pending["file_size"] is None
    assert pending["duration"] == "95分钟"
    seen = ok(lib.get(f"{API}/resource/metadata?avid=XYZ-010"))
    assert seen["watched"] is True and seen["is_favorite"] is True
    # A change through the old PATCH shows on the next read (the page reloads it).
    ok(lib.patch(f"{API}/resource/ABC-002/status", json={"is_favorite": True}))
    assert ok(lib.get(f"{API}/resource/metadata?avid=ABC-002"))["is_favorite"] is True

    assert lib.get(f"{API}/resource/metadata?avid=NOPE-404").status_code == 404
    assert lib.get(f"{API}/resource/metadata?avid=../etc").status_code == 400
    assert lib.get(f"{API}/resource/metadata").status_code == 400


def test_preview_is_metadata_and_thumbnail(lib):
    p = ok(lib.get(f"{API}/resource/ABC-001/preview"))
    assert set(p) == {"metadata", "thumbnail_url"}
    assert p["metadata"]["avid"] == "ABC-001" and p["metadata"]["actors"] == ["Aoi Test", "Mei Sample"]
    assert p["thumbnail_url"].startswith(f"{API}/resource/cover?avid=ABC-001&size=small&v=")
    assert lib.get(p["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    assert lib.get(f"{API}/resource/NOPE-404/preview").status_code == 404


def test_abspath_with_the_stored_prefix(lib):
    a = ok(lib.get(f"{API}/downloads/abspath", params={"avid": "ABC-001"}))
    assert a["abspath"] == str(lib.data.resolve() / "ABC-001" / "ABC-001.mp4")
    ok(lib.put("/api/setting", json={"ui": {"file_path_prefix": "smb://nas"}}))
    assert ok(lib.get(f"{API}/downloads/abspath?avid=ABC-001"))["abspath"].startswith("smb://nas/")
    res = lib.get(f"{API}/downloads/abspath?avid=ABC-002")
    assert res.status_code == 404 and res.json()["code"] == 404
    assert lib.get(f"{API}/downloads/abspath").status_code == 400


def test_delete_downloads_deletes_only_the_video(lib):
    """Item 3: DELETE /downloads/{avid} is "delete the video file"; metadata and cover stay."""
    d = ok(lib.delete(f"{API}/downloads/ABC-001"))
    assert d["avid"] == "ABC-001" and d["deleted_file"] == "ABC-001.mp4" and d["file_size"] == 1024
    folder = lib.data / "ABC-001"
    assert not (folder / "ABC-001.mp4").exists()
    assert (folder / "ABC-001.json").exists() and (folder / "ABC-001.jpg").exists()
    m = ok(lib.get(f"{API}/resource/metadata?avid=ABC-001"))
    assert m["file_exists"] is False and m["file_size"] is None
    again = lib.delete(f"{API}/downloads/ABC-001")
    assert again.status_code == 404 and again.json()["code"] == 404


def test_the_video_plays_under_the_old_prefix_too(lib):
    """Not a call of the old client, but a player pointed at the old prefix: the same MP4, by range."""
    whole = lib.get(f"{API}/resource/ABC-001/video")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content == (lib.data / "ABC-001" / "ABC-001.mp4").read_bytes()
    part = lib.get(f"{API}/resource/ABC-001/video", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(whole.content)}"


def test_batch_delete_video_and_all_with_an_honest_status(lib):
    body = lib.post(f"{API}/resources/batch", json={"actions": [
        {"action": "delete-video", "avid": "ABC-001"}, {"action": "delete-all", "avid": "XYZ-010"}]})
    data = ok(body)
    by = {r["avid"]: r for r in data["results"]}
    assert by["ABC-001"]["action"] == "delete-video" and by["ABC-001"]["code"] == 200
    assert by["ABC-001"]["deleted_file"] == "ABC-001.mp4" and by["ABC-001"]["file_size"] == 1024
    assert by["XYZ-010"]["action"] == "delete-all" and by["XYZ-010"]["code"] == 200
    assert by["XYZ-010"]["resource"]["avid"] == "XYZ-010"
    assert (lib.data / "ABC-001" / "ABC-001.json").exists() and not (lib.data / "ABC-001" / "ABC-001.mp4").exists()
    assert not (lib.data / "XYZ-010").exists()

    # A failure is not a success: the status says so (the client reads only the status here).
    res = lib.post(f"{API}/resources/batch", json={"actions": [
        {"action": "delete-video", "avid": "ABC-002"}, {"action": "delete", "avid": "ABC-002"}]})
    assert res.status_code == 404 and res.json()["code"] == 404
    assert "1 of 2 failed" in res.json()["message"] and "ABC-002" in res.json()["message"]
    results = res.json()["data"]["results"]
    assert [(r["action"], r["code"]) for r in results] == [("delete-video", 404), ("delete", 200)]
    assert lib.post(f"{API}/resources/batch", json={"actions": [{"action": "explode", "avid": "A-1"}]}).status_code == 400
    assert lib.post(f"{API}/resources/batch", json={"actions": []}).status_code == 400


# -- actors and genres ------------------------------------------------------------------------

def test_actors_by_id_with_avatar_filename(lib):
    """Item 5: ``id`` picks the actor (the detail page's header); ``avatar_filename`` cues a photo."""
    everyone = ok(lib.get(f"{API}/actors/"))
    mei = next(a for a in everyone if a["name"] == "Mei Sample")
    assert mei["resource_count"] == 2 and mei["avatar_filename"] == "Mei Sample.jpg"
    assert mei["avatar_url"].startswith("http://127.0.0.1:9/")
    res = lib.get(f"{API}/actors/", params={"id": str(mei["id"]), "page": 1, "page_size": 1})
    assert res.json()["code"] == 200 and [a["name"] for a in res.json()["data"]] == ["Mei Sample"]
    assert res.json()["data"][0]["resource_count"] == 2
    rin = next(a for a in everyone if a["name"] == "Rin Fixture")
    assert ok(lib.get(f"{API}/actors/?id={rin['id']}"))[0]["name"] == "Rin Fixture"
    assert ok(lib.get(f"{API}/actors/?id=99999")) == []
    assert lib.get(f"{API}/actors/?id=abc").status_code == 400

    by_name = ok(lib.get(f"{API}/actors/?order_by=name&order=asc"))
    assert [a["name"] for a in by_name] == ["Aoi Test", "Mei Sample", "Rin Fixture"]
    assert [a["name"] for a in ok(lib.get(f"{API}/actors/?order_by=name&order=desc"))][0] == "Rin Fixture"
    assert ok(lib.get(f"{API}/actors/?order_by=count&order=desc"))[0]["name"] == "Mei Sample"
    assert ok(lib.get(f"{API}/actors/?order_by=count&order=asc"))[-1]["name"] == "Mei Sample"
    assert [a["name"] for a in ok(lib.get(f"{API}/actors/?search=rin"))] == ["Rin Fixture"]

    # A placeholder is no photo; a photo stored in the library is, and it is what is served.
    put_resource(lib.data, "PLC-001", actors=("Nobody Yet",))
    lib.st.index.sync(["PLC-001"])
    body = json.loads((lib.data / "PLC-001" / "PLC-001.json").read_text())
    body["actors"] = [{"name": "Nobody Yet", "avatar_url": "https://x.example/nowprinting.gif"}]
    (lib.data / "PLC-001" / "PLC-001.json").write_text(json.dumps(body))
    lib.st.index.sync(["PLC-001"])
    nobody = ok(lib.get(f"{API}/actors/?search=Nobody"))[0]
    assert nobody["avatar_filename"] is None and nobody["avatar_url"] is None
    photo = lib.data / "PLC-001" / ".actors" / "Nobody_Yet.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8jpeg")
    nobody = ok(lib.get(f"{API}/actors/?search=Nobody"))[0]
    assert nobody["avatar_filename"] == "Nobody_Yet.jpg"
    assert lib.get(f"{API}/actors/{nobody['id']}/avatar").content == b"\xff\xd8jpeg"


def test_genres_by_id(lib):
    everyone = ok(lib.get(f"{API}/genres/"))
    drama = next(g for g in everyone if g["name"] == "Drama")
    assert drama["resource_count"] == 2 and everyone[0]["name"] == "Drama"
    res = lib.get(f"{API}/genres/", params={"id": str(drama["id"]), "page": 1, "page_size": 1})
    assert res.json()["code"] == 200 and res.json()["data"] == [drama]
    comedy = next(g for g in everyone if g["name"] == "Comedy")
    assert ok(lib.get(f"{API}/genres/?id={comedy['id']}")) == [comedy]
    assert ok(lib.get(f"{API}/genres/?id=99999")) == []
    assert [g["name"] for g in ok(lib.get(f"{API}/genres/?order_by=name&order=asc"))] == ["Comedy", "Drama", "Office"]
    assert lib.get(f"{API}/genres/?order_by=height").status_code == 400


# -- settings ---------------------------------------------------------------------------------

def test_settings_get_and_put(lib):
    """Item 6: ``{enable_avatar: "true"|"false", display_title}``, kept in the stored overrides."""
    assert ok(lib.get(f"{API}/setting")) == {"enable_avatar": "true", "display_title": "source_title"}
    saved = ok(lib.put(f"{API}/setting", json={"enable_avatar": "false", "display_title": "translated_title"}))
    assert saved == {"enable_avatar": "false", "display_title": "translated_title"}
    assert ok(lib.get(f"{API}/setting")) == saved
    stored = json.loads((lib.data / "settings.json").read_text())
    assert stored["ui"] == {"enable_avatar": False, "display_title": "translated_title"}
    assert ok(lib.put(f"{API}/setting", json={"enable_avatar": "true"}))["display_title"] == "translated_title"
    # nassav's own settings see the same values, and keep theirs beside them.
    assert ok(lib.get("/api/setting"))["overrides"]["ui"]["enable_avatar"] is True
    for bad in ({"display_title": "title"}, {"enable_avatar": "yes"}, {}, {"theme": "dark"}):
        res = lib.put(f"{API}/setting", json=bad)
        message = res.json()["message"]
        assert res.status_code == 400 and ("display_title" in message or "enable_avatar" in message), message
    assert ok(lib.get(f"{API}/setting"))["enable_avatar"] == "true"


# -- the older generation ---------------------------------------------------------------------

def test_old_resource_list_and_downloads_list(lib):
    items = ok(lib.get(f"{API}/resource/list"))
    assert [i["avid"] for i in items] == ["ABC-001", "ABC-002", "XYZ-010"]
    assert set(items[0]) == {"avid", "title", "source", "release_date", "has_video"}
    assert items[0] == {"avid": "ABC-001", "title": "Rainy Office Day", "source": "missav",
                        "release_date": "2024-01-02", "has_video": True}
    assert ok(lib.get(f"{API}/downloads/list")) == ["ABC-001", "XYZ-010"]


def test_old_downloads_metadata(lib):
    m = ok(lib.get(f"{API}/downloads/metadata", params={"avid": "ABC-001"}))
    for k in ("avid", "title", "m3u8", "source", "release_date", "duration", "director", "studio", "label",
              "series", "actors", "genres", "file_size", "file_exists"):
        assert k in m, k
    assert m["title"] == "Rainy Office Day" and m["file_exists"] is True and m["actors"][0] == "Aoi Test"
    assert lib.get(f"{API}/downloads/metadata?avid=NOPE-1").status_code == 404
