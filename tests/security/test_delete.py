"""Deleting from the library: concurrent deletes and editions, on the real gateway and Redis.

- Two ``DELETE /api/resource/{avid}`` at once: one 200, one 404, never two 200s (the rename of
  the folder is the one arbiter), over many rounds on a live uvicorn server.
- One folder per code, holding one edition (the metadata JSON's ``edition``; none recorded =
  no edition). A DELETE must name exactly that edition; otherwise a 404 says what the library
  holds and the request that deletes it, and no file is touched.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from pipeline.avid import parse
from pipeline.errors import OtherEdition
from pipeline.store import ResourceStore
from tests.api_helpers import gateway, put_resource, settle
from tests.figures import record
from tests.live_server import live_gateway
from tests.security.raw_http import burst, request_bytes

ROUNDS = 40


def _files(data, code):
    d = data / code
    return sorted(p.name for p in d.rglob("*")) if d.exists() else []


@pytest.mark.parametrize("at_once", [2, 8])
def test_concurrent_deletes_give_exactly_one_200(tmp_path, r, redis_url, at_once):
    data = tmp_path / "data"
    with live_gateway(data, redis_url) as gw:
        outcomes: Counter = Counter()
        bad = []
        for i in range(ROUNDS):
            code = f"RACE-{i + 1:03d}"
            put_resource(data, code, video=True)
            (data / ".parts" / code).mkdir(parents=True)
            (data / ".parts" / code / "seg-0.ts").write_bytes(b"x")
            reqs = [request_bytes("DELETE", f"/api/resource/{code}", gw.port)] * at_once
            answers, _ = asyncio.run(burst(gw.port, reqs))
            codes = Counter(a.status for a in answers)
            outcomes.update(codes)
            if codes != {200: 1, 404: at_once - 1}:
                bad.append((code, codes, [a.body[:160] for a in answers]))
                continue
            won = next(a for a in answers if a.status == 200).json()["data"]["deleted_files"]
            # The parts may have gone with a loser's attempt (parts are renamed first).
            assert won[:3] == [f"{code}/{code}.jpg", f"{code}/{code}.json", f"{code}/{code}.mp4"]
            assert not (data / code).exists() and not (data / ".parts" / code).exists()
        deleted_events = [f for _, f in r.xrange("nassav:events") if f.get("type") == "resource_deleted"]
        settle(gw)  # stopping the projection while it applies an event can hang (see the report)
    record(f"concurrent deletes ({at_once} at once)", rounds=ROUNDS,
           **{f"n_{k}": v for k, v in sorted(outcomes.items())})
    assert not bad, bad[:3]
    assert len(deleted_events) == ROUNDS  # one deletion announced per folder
    assert not [p for p in data.iterdir() if p.name.startswith(".deleting-")]


@pytest.fixture
def lib(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-123", video=True)                 # no edition recorded
    put_resource(data, "ABC-124", video=True, edition="C")    # the -C edition
    put_resource(data, "ABC-125")
    (data / "ABC-125" / "ABC-125.json").write_text("{not json")  # edition unknown
    with gateway(data, redis_url) as c:
        c.data = data  # type: ignore[attr-defined]
        yield c
        settle(c)  # stopping the projection while it applies an event can hang (see the report)


def test_an_edition_never_deletes_another_editions_folder(lib):
    before = _files(lib.data, "ABC-123")
    res = lib.delete("/api/resource/ABC-123-C")
    assert res.status_code == 404
    body = res.json()
    assert body["message"] == ("ABC-123-C is not in the library: the folder ABC-123 holds ABC-123; "
                               "to delete it: DELETE /api/resource/ABC-123")
    assert body["data"]["held"] == "ABC-123" and body["data"]["delete"] == "DELETE /api/resource/ABC-123"
    for other in ("ABC-123-U", "abc123-uc", "ABC-123-CD1"):
        assert lib.delete(f"/api/resource/{other}").status_code == 404
    assert _files(lib.data, "ABC-123") == before  # nothing touched
    # The batch API follows the same rule, per action.
    res = lib.post("/api/resources/batch", json={"actions": [{"action": "delete", "avid": "ABC-123-C"}]})
    assert res.json()["data"]["results"][0]["code"] == 404
    assert _files(lib.data, "ABC-123") == before
    # The request the 404 named does delete it.
    assert lib.delete("/api/resource/ABC-123").status_code == 200
    assert not (lib.data / "ABC-123").exists()


def test_a_folder_holding_an_edition_is_deleted_by_that_edition_only(lib):
    res = lib.delete("/api/resource/ABC-124")
    assert res.status_code == 404
    assert res.json()["message"] == ("ABC-124 is not in the library: the folder ABC-124 holds ABC-124-C; "
                                     "to delete it: DELETE /api/resource/ABC-124-C")
    assert lib.delete("/api/resource/ABC-124-U").status_code == 404
    assert (lib.data / "ABC-124" / "ABC-124.mp4").exists()
    res = lib.delete("/api/resource/abc-124-c")
    assert res.status_code == 200 and res.json()["message"] == "ABC-124-C deleted (3 files)"
    assert not (lib.data / "ABC-124").exists()


def test_a_folder_of_unknown_edition_is_deleted_by_its_code(lib):
    res = lib.delete("/api/resource/ABC-125-C")
    assert res.status_code == 404
    assert "edition is unknown" in res.json()["message"]
    assert res.json()["message"].endswith("to delete it: DELETE /api/resource/ABC-125")
    assert (lib.data / "ABC-125").exists()
    assert lib.delete("/api/resource/ABC-125").status_code == 200


def test_store_refuses_another_edition_without_touching_files(tmp_path):
    put_resource(tmp_path, "XYZ-001", edition="UC")
    store = ResourceStore(tmp_path)
    assert store.held(parse("XYZ-001")) == parse("XYZ-001-UC")
    with pytest.raises(OtherEdition) as e:
        store.delete(parse("XYZ-001"))
    assert e.value.held == "XYZ-001-UC"
    assert json.loads((tmp_path / "XYZ-001" / "XYZ-001.json").read_text())["edition"] == "UC"
    assert store.delete(parse("XYZ-001-UC")) == ["XYZ-001/XYZ-001.jpg", "XYZ-001/XYZ-001.json"]
    assert store.delete(parse("XYZ-001-UC")) is None  # nothing left: the second delete removes nothing


def test_parts_alone_are_deleted_by_the_code(tmp_path):
    store = ResourceStore(tmp_path)
    (tmp_path / ".parts" / "PRT-001").mkdir(parents=True)
    (tmp_path / ".parts" / "PRT-001" / "seg-0.ts").write_bytes(b"x")
    with pytest.raises(OtherEdition):
        store.delete(parse("PRT-001-C"))  # nothing says which edition the parts were
    assert store.delete(parse("PRT-001")) == [".parts/PRT-001/seg-0.ts"]
    assert store.delete(parse("PRT-001")) is None
