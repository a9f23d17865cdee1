"""The blocklist: its store on a real Redis, the submit script refusing a blocked AVID (every
path), resolve skipping a source blocked for one title (fixture site), and /api/blocklist."""

from __future__ import annotations

import pytest

from pipeline.avid import parse
from pipeline.blocklist import AvidBlocked, Blocklist, InvalidBlockEntry
from pipeline.claims import Claims
from pipeline.errors import AllSourcesFailed, InvalidAvid
from pipeline.jobs import ACTIVE, Jobs
from pipeline.source_health import SourceHealth
from sources.registry import resolve_with_health
from tests.api_helpers import gateway
from tests.test_resolve_health import site, sources  # noqa: F401 (the same fixture-site world)


def test_entries_are_added_listed_and_removed(r):
    bl = Blocklist(r)
    assert bl.is_blocked("ABC-123") is None and bl.blocked_sources("ABC-123") == set() and bl.list() == []
    e = bl.add_avid("abc123", "  not  wanted\n")
    assert (e.avid, e.source, e.reason) == ("ABC-123", "", "not wanted") and e.added_at > 0
    bl.add_source("ABC-123-C", "jable", "broken copy")  # the edition belongs to the code
    bl.add_source("ABC-1234", "missav")  # a code that starts the same is another title
    assert bl.is_blocked("ABC-123-U").reason == "not wanted"
    assert bl.blocked_sources("ABC-123") == {"jable"}
    assert [(x.avid, x.source) for x in bl.list()] == [("ABC-123", ""), ("ABC-123", "jable"), ("ABC-1234", "missav")]
    assert [x.source for x in bl.list("ABC-123")] == ["", "jable"]
    assert bl.remove_avid("ABC-123") is True and bl.remove_avid("ABC-123") is False
    assert bl.is_blocked("ABC-123") is None and bl.blocked_sources("ABC-123") == {"jable"}
    assert bl.remove_source("ABC-123", "jable") is True and bl.remove_source("ABC-123", "jable") is False
    with pytest.raises(InvalidBlockEntry, match="source name"):
        bl.add_source("ABC-123", "Bad Name")
    with pytest.raises(InvalidBlockEntry, match="at most 500"):
        bl.add_avid("ABC-123", "x" * 501)
    with pytest.raises(InvalidAvid):
        bl.add_avid("not an avid!")


def test_the_submit_script_refuses_a_blocked_avid_and_writes_nothing(r):
    jobs, bl = Jobs(r), Blocklist(r)
    bl.add_avid("BLK-001", "bad rip")
    for asked in ("BLK-001", "BLK-001-C"):
        with pytest.raises(AvidBlocked) as refused:
            jobs.submit(asked, "download")
        assert refused.value.reason == "bad rip"
        assert "DELETE /api/blocklist/BLK-001" in str(refused.value)
    assert Claims(r).all() == {} and r.zcard(ACTIVE) == 0 and r.xlen("nassav:events") == 0
    # A blocked source does not block the AVID; lifting the entry lets it through again.
    bl.add_source("OK-001", "jable")
    assert jobs.submit("OK-001").accepted
    bl.remove_avid("BLK-001")
    assert jobs.submit("BLK-001").accepted


def test_a_worker_side_submit_is_refused_with_the_reason(r, tmp_path):
    # The subscription sweep and tools submit through pipeline/submit.py: the same script refuses.
    from pipeline.store import ResourceStore
    from pipeline.submit import REFUSED, submit

    Blocklist(r).add_avid("SUB-001", "seen it")
    sent: list[str] = []
    got = submit(Jobs(r), ResourceStore(tmp_path), parse("SUB-001"), "download", lambda a, j: sent.append(j))
    assert got.status == REFUSED and "SUB-001 is on the blocklist (seen it)" in got.message
    assert sent == [] and Claims(r).all() == {}


def test_resolve_never_asks_a_source_the_user_blocked_for_the_title(site, sources, r):
    avid, health = parse("DEMO-001"), SourceHealth(r)
    first = sources[0].name
    found, outcomes = resolve_with_health(avid, sources, health, blocked={first})
    assert found.source != first
    assert [(o.source, o.outcome) for o in outcomes][0] == (first, "blocked by the user")
    assert site.stats()["requests"].get(first, 0) == 0  # not asked
    assert health.get(first).get("last_outcome") in (None, "")  # says nothing of the site's health
    # Even the source the user prefers stays unasked.
    found, _ = resolve_with_health(avid, sources, health, prefer=first, blocked={first})
    assert found.source != first
    with pytest.raises(AllSourcesFailed) as failed:
        resolve_with_health(avid, sources, health, blocked={s.name for s in sources})
    assert {o.outcome for o in failed.value.outcomes} == {"blocked by the user"}
    assert sum(site.stats()["requests"].values()) > 0  # the earlier calls asked the others


def test_api_blocklist_routes_and_every_submit_path_refuses(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        added = c.post("/api/blocklist/blk001", json={"reason": "never"})
        assert added.status_code == 201 and added.json()["data"]["avid"] == "BLK-001"
        src = c.post("/api/blocklist/OK-001", json={"source": "jable", "reason": "broken"})
        assert src.status_code == 201 and src.json()["data"]["source"] == "jable"

        for path in ("/api/downloads/BLK-001", "/nassav/api/downloads/BLK-001"):
            res = c.post(path)
            assert res.status_code == 403, path
            assert "BLK-001 is on the blocklist (never)" in res.json()["message"]
            assert "DELETE /api/blocklist/BLK-001" in res.json()["message"]
        batch = c.post("/api/downloads/batch_submit", json={"avids": ["BLK-001", "OK-001"]}).json()["data"]
        assert [x["code"] for x in batch["results"]] == [403, 202]
        assert Claims(r).holder("BLK-001") is None

        listed = c.get("/api/blocklist").json()["data"]
        assert [(i["avid"], i["source"]) for i in listed["items"]] == [("BLK-001", ""), ("OK-001", "jable")]
        one = c.get("/api/blocklist/OK-001").json()["data"]
        assert one["blocked"] is None and [s["source"] for s in one["sources"]] == ["jable"]

        # Bad input: a clear 4xx naming what is accepted.
        assert c.post("/api/blocklist/not%20an%20avid!").status_code == 400
        unknown = c.post("/api/blocklist/ABC-123", json={"source": "nosuchsite"})
        assert unknown.status_code == 400 and "configured source" in unknown.json()["message"]
        assert c.post("/api/blocklist/ABC-123", json={"source": "Bad Name"}).status_code == 400
        assert c.post("/api/blocklist/ABC-123", json={"reason": 5}).status_code == 400
        assert c.post("/api/blocklist/ABC-123", json={"color": "red"}).status_code == 400
        assert c.delete("/api/blocklist/ABC-123").status_code == 404
        assert c.delete("/api/blocklist/OK-001/missav").status_code == 404

        assert c.delete("/api/blocklist/OK-001/jable").status_code == 200
        assert c.delete("/api/blocklist/BLK-001").status_code == 200
        assert c.post("/api/downloads/BLK-001").status_code == 202
        assert c.get("/api/blocklist").json()["data"]["items"] == []


def test_blocklist_writes_need_the_token(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url, api_token="s3cret-token-for-tests") as c:
        assert c.post("/api/blocklist/ABC-123").status_code == 401
        assert c.get("/api/blocklist").status_code == 401
        ok = c.post("/api/blocklist/ABC-123", headers={"Authorization": "Bearer s3cret-token-for-tests"})
        assert ok.status_code == 201
