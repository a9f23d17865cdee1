"""The library index carries the edition the library holds: from the metadata JSON at rebuild,
from the events an upgrade emits (the projection re-reads the folder), in the list's items and
as the list's ``?edition=`` filter; an index of the layout before the column is rebuilt."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import redis.asyncio as aioredis

from gateway.index import FILENAME, LibraryIndex, Query
from gateway.projection import Projection
from pipeline.avid import parse
from pipeline.events import Events
from pipeline.redis_client import DECODED
from pipeline.store import ResourceStore
from tests.api_helpers import gateway, put_resource


def _library(data):
    put_resource(data, "EDI-001", video=True, edition="C", created_at=1000)
    put_resource(data, "EDI-002", video=True, created_at=2000)  # no edition recorded: regular
    put_resource(data, "EDI-003", video=True, edition="U", created_at=3000)
    put_resource(data, "EDI-004", edition="nonsense", created_at=4000)  # hand-edited: regular


def test_rebuild_fills_the_edition_and_the_filter_uses_it(tmp_path):
    data = tmp_path / "data"
    _library(data)
    index = LibraryIndex(data)
    try:
        assert index.rebuild() == 4
        assert {i["avid"]: i["edition"] for i in index.list(Query())[0]} == {
            "EDI-001": "C", "EDI-002": "regular", "EDI-003": "U", "EDI-004": "regular"}
        assert [i["avid"] for i in index.list(Query(edition="C"))[0]] == ["EDI-001"]
        assert [i["avid"] for i in index.list(Query(edition="", sort_by="avid", order="asc"))[0]] == [
            "EDI-002", "EDI-004"]
        assert index.list(Query(edition="UC")) == ([], 0)
    finally:
        index.close()


def test_an_index_without_the_edition_column_is_rebuilt(tmp_path):
    data = tmp_path / "data"
    _library(data)
    # The layout before the column: schema 2, a resources table without `edition`.
    data.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(data / FILENAME) as old:
        old.executescript("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT);"
                          "INSERT INTO kv VALUES ('schema', '2');"
                          "CREATE TABLE resources (avid TEXT PRIMARY KEY, title TEXT);"
                          "INSERT INTO resources VALUES ('EDI-001', 'stale');")
    old.close()
    index = LibraryIndex(data)
    try:
        assert index.created and index.count() == 0  # dropped: the gateway rebuilds when `created`
        assert index.rebuild() == 4
        assert index.get("EDI-001")["edition"] == "C"
    finally:
        index.close()


def test_an_upgrade_event_moves_the_row_to_the_new_edition(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "EDI-010", video=True)
    index = LibraryIndex(data)
    events = Events(r)

    async def scenario():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        p = Projection(client, index, consumer="t")
        await p.ensure_group()
        try:
            events.emit("task_completed", avid="EDI-010", job_id="j1", stage="download")
            await p.drain()
            assert index.get("EDI-010")["edition"] == "regular"
            # What actors/upgrading.py leaves: the metadata JSON names the new edition, then the event.
            ResourceStore(data).update_meta(parse("EDI-010"), edition="C",
                                            edition_history=[{"from": "regular", "to": "C"}])
            events.emit("stage_finished", avid="EDI-010", job_id="j2", stage="download",
                        data={"upgrade": True, "edition_from": "regular", "edition_to": "C"})
            await p.drain()
            assert index.get("EDI-010")["edition"] == "C"
        finally:
            await client.aclose()

    asyncio.run(scenario())
    index.close()


def test_the_list_returns_and_filters_by_edition(tmp_path, r, redis_url):
    data = tmp_path / "data"
    _library(data)
    with gateway(data, redis_url) as c:
        items = c.get("/api/resources/?sort_by=avid&order=asc").json()["data"]
        assert [(i["avid"], i["edition"]) for i in items] == [
            ("EDI-001", "C"), ("EDI-002", "regular"), ("EDI-003", "U"), ("EDI-004", "regular")]
        get = lambda q: [i["avid"] for i in c.get("/api/resources/?" + q).json()["data"]]  # noqa: E731
        assert get("edition=C") == ["EDI-001"]
        assert get("edition=u") == ["EDI-003"]  # any case, as the config takes it
        assert get("edition=regular&sort_by=avid&order=asc") == ["EDI-002", "EDI-004"]
        assert c.get("/api/resources/?edition=").status_code == 200  # empty = any
        bad = c.get("/api/resources/?edition=CD1")
        assert bad.status_code == 400 and "edition must be one of C, UC, U, regular" in bad.json()["message"]
        assert json.loads(bad.text)["code"] == 400
