"""The library index as a projection of the event stream: built from events, idempotent under
redelivery, equal to a rebuild from disk, and keeping the user's state across rebuilds."""

from __future__ import annotations

import asyncio
import json
import shutil

import redis.asyncio as aioredis

from gateway.index import FILENAME, LibraryIndex, Query
from gateway.projection import GROUP, METRICS_KEY, Projection
from pipeline.events import Events, parse_entries
from pipeline.redis_client import DECODED
from tests.api_helpers import gateway, put_resource, settle


def run(coro):
    return asyncio.run(coro)


async def _projection(redis_url, index, consumer="test", **kw):
    client = aioredis.Redis.from_url(redis_url, **DECODED)
    p = Projection(client, index, consumer=consumer, **kw)
    await p.ensure_group()
    return client, p


def test_projection_follows_events(tmp_path, r, redis_url):
    data = tmp_path / "data"
    index = LibraryIndex(data)
    ev = Events(r)

    async def scenario():
        client, p = await _projection(redis_url, index)
        try:
            put_resource(data, "PRJ-001", title="First Title", cover=False)
            ev.emit("stage_finished", avid="PRJ-001", job_id="j1", stage="scrape")
            await p.drain()
            row = index.get("PRJ-001")
            assert row["title"] == "First Title" and not row["has_video"] and not row["has_cover"]

            # Progress and warnings never touch the folder: no sync for them.
            put_resource(data, "PRJ-001", title="Changed Without Event", cover=False)
            ev.emit("progress_update", avid="PRJ-001", job_id="j1", stage="download", data={"percent": 50})
            ev.emit("warning", avid="PRJ-001", job_id="j1", stage="scrape", data={"message": "x"})
            await p.drain()
            assert index.get("PRJ-001")["title"] == "First Title"

            put_resource(data, "PRJ-001", title="Final Title", video=True)
            ev.emit("task_completed", avid="PRJ-001", job_id="j1", stage="download")
            await p.drain()
            row = index.get("PRJ-001")
            assert row["title"] == "Final Title" and row["has_video"] and row["has_cover"]
            assert row["video_create_time"] is not None

            shutil.rmtree(data / "PRJ-001")
            ev.emit("resource_deleted", avid="PRJ-001", job_id="", stage="library")
            await p.drain()
            assert index.get("PRJ-001") is None
            assert (await client.xinfo_groups("nassav:events"))[0]["pending"] == 0
        finally:
            await client.aclose()

    run(scenario())
    index.close()


def test_an_entry_whose_apply_failed_is_read_again(tmp_path, r, redis_url):
    """The pending list is read only when something may be pending: after a failed apply it is."""
    data = tmp_path / "data"
    index = LibraryIndex(data)
    ev = Events(r)

    class FailsOnce(Projection):
        failed = False

        async def write(self, *a, **kw):
            if not self.failed:
                self.failed = True
                raise OSError("disk went away")
            return await super().write(*a, **kw)

    async def scenario():
        client = aioredis.Redis.from_url(redis_url, **DECODED)
        p = FailsOnce(client, index, consumer="t")
        await p.ensure_group()
        try:
            assert await p.drain() == 0  # nothing pending, nothing new: the next drain skips "0"
            put_resource(data, "PND-001", title="Pending Title", cover=False)
            ev.emit("stage_finished", avid="PND-001", job_id="j1", stage="scrape")
            try:
                await p.drain()
                raise AssertionError("the first apply should have failed")
            except OSError:
                pass
            assert (await client.xinfo_groups("nassav:events"))[0]["pending"] == 1
            assert await p.drain() == 1  # read again from the pending list
            assert index.get("PND-001")["title"] == "Pending Title"
            assert (await client.xinfo_groups("nassav:events"))[0]["pending"] == 0
        finally:
            await client.aclose()

    run(scenario())
    index.close()


def test_replay_is_idempotent_and_counts_once(tmp_path, r, redis_url):
    data = tmp_path / "data"
    index = LibraryIndex(data)
    ev = Events(r)

    async def scenario():
        client, p = await _projection(redis_url, index, claim_idle_ms=0)
        try:
            put_resource(data, "REP-001", video=True)
            put_resource(data, "REP-002")
            ev.emit("queued", avid="REP-001", job_id="j1", stage="queued", data={"kind": "download"})
            ev.emit("stage_finished", avid="REP-001", job_id="j1", stage="download", data={"bytes": 1000})
            ev.emit("task_completed", avid="REP-001", job_id="j1", stage="download")
            ev.emit("task_failed", avid="REP-002", job_id="j2", stage="resolve", data={"status": "failed"})
            # Another gateway read them and died before acknowledging: they sit pending for it.
            await client.xreadgroup(GROUP, "dead-gateway", {"nassav:events": ">"}, count=100)
            assert await p.drain() == 0  # not ours: ">" has nothing new
            await p._take_over()
            first = index.snapshot()
            counters = await client.hgetall(METRICS_KEY)
            assert float(counters["download_bytes"]) == 1000 and float(counters["jobs_finished:completed"]) == 1

            # The same entries again (a redelivery): same rows, counters untouched.
            rows = await client.xrange("nassav:events")
            await p.apply(parse_entries(rows))
            await p.apply(parse_entries(rows))
            assert index.snapshot() == first
            assert await client.hgetall(METRICS_KEY) == counters
            assert {x["avid"] for x in first} == {"REP-001", "REP-002"}
        finally:
            await client.aclose()

    run(scenario())
    index.close()


def test_odd_metadata_files_never_stall_the_index(tmp_path):
    data = tmp_path / "data"
    put_resource(data, "ODD-001")
    put_resource(data, "ODD-002", video=True)
    put_resource(data, "ODD-003")
    (data / "ODD-001" / "ODD-001.json").write_text("[1, 2, 3]")
    (data / "ODD-002" / "ODD-002.json").write_text("{broken")
    (data / "ODD-003" / "ODD-003.json").write_text(json.dumps(
        {"title": 5, "source": "missav", "genres": "Drama", "actors": [1, {"name": "X"}], "video": [], "user": 1}))
    index = LibraryIndex(data)
    assert index.rebuild() == 2  # ODD-001 has neither usable metadata nor a video
    assert index.get("ODD-002")["has_video"] and index.get("ODD-003")["title"] == "5"
    assert index.get("ODD-003")["actors"] == ["X"] and index.get("ODD-003")["genres"] == []
    index.close()


def test_rebuild_from_disk_equals_the_projection(tmp_path, r, redis_url):
    data = tmp_path / "data"
    for i in range(12):
        put_resource(data, f"EQ-{i:03d}", video=i % 3 == 0, actors=(f"Actor {i % 4}",),
                     genres=("Drama", f"G{i % 5}"), created_at=1000 + i)
    with gateway(data, redis_url) as c:
        ev = Events(r)
        put_resource(data, "EQ-100", title="Arrived By Event", video=True)
        ev.emit("task_completed", avid="EQ-100", job_id="j", stage="download")
        assert c.patch("/api/resource/EQ-005/status", json={"watched": True, "is_favorite": True}).status_code == 200
        shutil.rmtree(data / "EQ-011")
        ev.emit("resource_deleted", avid="EQ-011", job_id="", stage="library")
        settle(c)
        projected = c.st.index.snapshot()
    assert len(projected) == 12
    for suffix in ("", "-wal", "-shm"):
        (data / (FILENAME + suffix)).unlink(missing_ok=True)
    rebuilt = LibraryIndex(data)
    assert rebuilt.created
    rebuilt.rebuild()
    # Every column, the user's state included (the JSON carries it, with its time).
    assert rebuilt.snapshot() == projected
    assert rebuilt.user_state("EQ-005")["watched"] is True
    assert [i["avid"] for i in rebuilt.list(Query(watched=True))[0]] == ["EQ-005"]
    genres = {g["name"]: g["resource_count"] for g in rebuilt.genres()[0]}
    assert genres["Drama"] == 12
    rebuilt.close()


def test_missing_index_is_rebuilt_when_the_gateway_starts(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "OLD-001", video=True)
    with gateway(data, redis_url) as c:
        assert c.get("/api/resources/").json()["pagination"]["total"] == 1
    # Index present, group present: a restart keeps rows without a rebuild.
    (data / "OLD-001" / "OLD-001.json").write_text(json.dumps({"avid": "OLD-001", "title": "edited on disk"}))
    with gateway(data, redis_url) as c:
        assert c.get("/api/resources/").json()["data"][0]["title"] != "edited on disk"
    # Redis lost its stream (and the group): events may have been missed, so the disk wins.
    r.delete("nassav:events")
    with gateway(data, redis_url) as c:
        assert c.get("/api/resources/").json()["data"][0]["title"] == "edited on disk"


def test_an_index_of_an_older_layout_is_dropped_and_rebuilt(tmp_path):
    data = tmp_path / "data"
    put_resource(data, "LAY-001")
    index = LibraryIndex(data)
    index.rebuild()
    index._w.execute("UPDATE kv SET value = '0' WHERE key = 'schema'")
    index.close()
    again = LibraryIndex(data)
    assert again.created and again.count() == 0  # the gateway rebuilds when `created`
    assert again.rebuild() == 1 and again.get("LAY-001")["genres"] == ["Drama"]
    again.close()
