"""The upgrade route through the gateway on a real Redis, and the periodic edition check's
pass (which titles it queues, its lock, the claim path) on the same Redis."""

from __future__ import annotations

from actors.context import Context
from actors.upgrade_check import submitter
from pipeline import jobs as jobstates
from pipeline.avid import parse
from pipeline.editions import preference
from pipeline.store import ResourceStore
from pipeline.upgrade_check import LOCK_KEY, UpgradeCheck, candidates
from tests.api_helpers import config, gateway, put_resource


def test_upgrade_route(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    put_resource(data, "HAS-002", video=True, edition="UC")
    put_resource(data, "META-001")
    with gateway(data, redis_url, download={"editions": ["C", "UC", "regular"]}) as c:
        bad = c.post("/api/resource/not%20an%20avid!/upgrade")
        assert bad.status_code == 400 and "accepted forms" in bad.json()["message"]
        for code in ("META-001", "NONE-001"):
            none = c.post(f"/api/resource/{code}/upgrade")
            assert none.status_code == 404 and "no video to upgrade; download it first" in none.json()["message"]
        ok = c.post("/api/resource/has-001/upgrade")
        assert ok.status_code == 202, ok.json()
        body = ok.json()["data"]
        assert body["avid"] == "HAS-001" and body["kind"] == "upgrade" and body["edition"] == "regular"
        assert body["editions"] == ["C", "UC", "regular"]
        job = jobstates.Jobs(r).get(body["job_id"])
        assert job["kind"] == "upgrade" and job["status"] == jobstates.QUEUED
        busy = c.post("/api/resource/HAS-001/upgrade")
        assert busy.status_code == 409 and busy.json()["data"]["job_id"] == body["job_id"]
        assert c.post("/api/resource/HAS-002/upgrade").json()["data"]["edition"] == "UC"
        assert c.get("/api/resource/HAS-001/upgrade").status_code == 405
        assert "/api/resource/{avid}/upgrade" in c.get("/openapi.json").json()["paths"]


def test_the_periodic_check_queues_titles_not_in_the_most_preferred_edition(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "REG-001", video=True)
    put_resource(data, "SUB-001", video=True, edition="C")
    put_resource(data, "LEAK-001", video=True, edition="U")
    put_resource(data, "META-001")
    store = ResourceStore(data)
    prefs = preference(["C", "regular"])
    assert [a.code for a in candidates(store, prefs)] == ["LEAK-001", "REG-001"]

    ctx = Context.create(config(data, redis_url), redis_url)
    try:
        sent: list[tuple[str, str, str]] = []
        check = UpgradeCheck(r, store, prefs, submit=submitter(ctx, lambda *m: sent.append(m), "resolve"))
        assert check.try_run(60) == ["LEAK-001", "REG-001"]
        assert [(s, a) for s, a, _ in sent] == [("resolve", "LEAK-001"), ("resolve", "REG-001")]
        assert all(ctx.jobs.get(j)["kind"] == "upgrade" for _, _, j in sent)
        assert check.try_run(60) is None  # another process checked within the period
        assert 0 < r.pttl(LOCK_KEY) <= 60_000
        assert check.run_once() == []  # both still have their job: left for the next pass
        ctx.jobs.finish(sent[1][2], "REG-001", jobstates.COMPLETED)
        assert check.run_once() == ["REG-001"]

        def broken(*_):
            raise ConnectionError("broker down")
        failing = UpgradeCheck(r, store, prefs, submit=submitter(ctx, broken, "resolve"))
        ctx.jobs.finish(sent[0][2], "LEAK-001", jobstates.COMPLETED)
        try:
            failing.run_once()
        except ConnectionError:
            pass
        else:
            raise AssertionError("a send that fails must surface")
        assert ctx.jobs.live_job("LEAK-001") is None  # the job was failed and its claim freed
        assert parse("LEAK-001") in candidates(store, prefs)
    finally:
        ctx.redis.close()


def test_the_preference_can_be_set_through_the_settings_api(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        assert c.get("/api/setting").json()["data"]["settings"]["download"]["editions"] == ["C", "regular"]
        bad = c.put("/api/setting", json={"download": {"editions": ["C", "HD"]}})
        assert bad.status_code == 400 and "download.editions" in bad.json()["message"]
        assert "C, UC, U and regular" in bad.json()["message"]
        bad = c.put("/api/setting", json={"download": {"upgrade_check_interval_s": "daily"}})
        assert bad.status_code == 400 and "upgrade_check_interval_s" in bad.json()["message"]
        ok = c.put("/api/setting", json={"download": {"editions": ["UC", "C", "regular"],
                                                      "upgrade_check_interval_s": 86400}})
        assert ok.status_code == 200, ok.json()
        assert ok.json()["data"]["overrides"]["download"]["editions"] == ["UC", "C", "regular"]
        assert ok.json()["data"]["next_start"]["download"]["editions"] == ["UC", "C", "regular"]


def test_the_old_client_deletes_by_code_whatever_edition_the_folder_holds(tmp_path, r, redis_url):
    """The original client knows codes only; once resolve or an upgrade picked the C edition,
    its deletes must still reach the folder (nassav's own API asks for the exact edition)."""
    data = tmp_path / "data"
    for code in ("SUB-001", "SUB-002", "SUB-003"):
        put_resource(data, code, video=True, edition="C")
    store = ResourceStore(data)
    with gateway(data, redis_url) as c:
        own = c.delete("/api/resource/SUB-001")
        assert own.status_code == 404 and "DELETE /api/resource/SUB-001-C" in own.json()["message"]
        video = c.delete("/nassav/api/downloads/SUB-001")
        assert video.status_code == 200, video.json()
        assert not store.video(parse("SUB-001")).exists() and store.meta(parse("SUB-001")).exists()
        gone = c.delete("/nassav/api/resource/SUB-002")
        assert gone.status_code == 200 and not store.dir(parse("SUB-002")).exists()
        batch = c.post("/nassav/api/resources/batch", json={"actions": [{"action": "delete", "avid": "SUB-003"}]})
        assert batch.json()["data"]["results"][0]["code"] == 200 and not store.dir(parse("SUB-003")).exists()
        assert c.delete("/nassav/api/resource/SUB-002").status_code == 404


def test_an_edition_check_that_changed_nothing_notifies_nobody(tmp_path, r, redis_url):
    """With the periodic check on, most upgrade jobs find nothing better: their completion
    (data.unchanged) must not message anyone nor make a media server rescan."""
    from pipeline.config import load
    from pipeline.events import Events
    from pipeline.notifier import Notifier

    c = load(None, {}, data_dir=str(tmp_path / "data"), redis_url=redis_url,
             notify={"targets": [{"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/",
                                  "secret": "s3cret-hmac-key", "events": ["task_completed"]}]},
             media_servers=[{"kind": "jellyfin", "url": "http://127.0.0.1:9", "api_key": "KEY-1"}])
    n = Notifier(c, r)
    events = Events(r)
    events.emit("task_completed", avid="ABC-123", job_id="j1", stage="resolve",
                data={"status": "completed", "message": "nothing better", "unchanged": True})
    events.emit("task_completed", avid="ABC-123", job_id="j2", stage="download",
                data={"status": "completed", "message": "ABC-123 done"})
    unchanged, landed = events.after("0")[-2:]
    assert n.dispatch(unchanged) == []
    assert len(n.dispatch(landed)) == 2  # the webhook and the rescan


def test_a_blocked_title_does_not_stop_the_periodic_check(tmp_path, r, redis_url):
    """A title in the library that the user has since put on the blocklist is refused by the
    submit script; the pass goes on to the titles after it."""
    from pipeline.blocklist import Blocklist

    data = tmp_path / "data"
    put_resource(data, "AAA-001", video=True)
    put_resource(data, "BBB-001", video=True)
    store = ResourceStore(data)
    prefs = preference(["C", "regular"])
    ctx = Context.create(config(data, redis_url), redis_url)
    try:
        Blocklist(r).add_avid("AAA-001", "not wanted")
        sent: list[tuple[str, str, str]] = []
        check = UpgradeCheck(r, store, prefs, submit=submitter(ctx, lambda *m: sent.append(m), "resolve"))
        assert check.run_once() == ["BBB-001"]
        assert [a for _, a, _ in sent] == ["BBB-001"] and ctx.jobs.live_job("AAA-001") is None
    finally:
        ctx.redis.close()
