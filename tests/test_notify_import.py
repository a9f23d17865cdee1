"""Notifications of an import: one message per run, a rescan per title folder.

A real import (tiny videos, the fixture site's catalogue, a real Redis) writes its events; a
Notifier reads them back from the stream and delivers to a local webhook receiver and a local
Jellyfin, as the notify workers would.
"""

from __future__ import annotations

import pytest

from actors.context import Context
from actors.importing import run_import
from pipeline import notify_message as msg
from pipeline.config import load
from pipeline.errors import ConfigError
from pipeline.events import Event, Events
from pipeline.notifier import Notifier
from pipeline.notify_match import wants
from tests.notify_receivers import FakeMediaServer, Receiver
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos


@pytest.fixture
def imported(tmp_path, r, redis_url):
    """An import of two titles, a duplicate of one and a stray file; the events it appended."""
    root = tmp_path / "old"
    root.mkdir()
    v = tiny_videos()
    (root / "DEMO-001.mp4").write_bytes(v[0].read_bytes())
    (root / "demo002.mkv").write_bytes(v[1].read_bytes())
    (root / "copy" / "DEMO-002.mkv").parent.mkdir()
    (root / "copy" / "DEMO-002.mkv").write_bytes(v[1].read_bytes())
    (root / "notes.txt").write_text("not a video")
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002"))
    cfg_path = site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url)
    ctx = Context.create(load(cfg_path, {}), redis_url)
    try:
        start = Events(r).after("0")[-1].id if Events(r).after("0") else "0"
        plan = run_import(ctx, "imp-notify", str(root), "move", False)
        yield plan, Events(r).after(start), cfg_path
    finally:
        ctx.redis.close()
        site.stop()


def notifier(cfg_path, r, *, targets=(), servers=()):
    c = load(cfg_path, {}, notify={"targets": list(targets), "min_backoff_s": 0, "max_backoff_s": 0},
             media_servers=list(servers))
    return Notifier(c, r)


def deliver_all(n: Notifier, events: list[Event]) -> list[str]:
    dids = [d for e in events if e.type in n.event_types() for d in n.dispatch(e)]
    for did in dids:
        assert n.deliver(did, 1).status == "delivered", n.deliveries.get(did)
    return dids


def test_an_import_sends_one_message_and_rescans_each_title_folder(imported, r):
    plan, events, cfg_path = imported
    counts = plan.counts()
    assert counts["place"] == 2 and counts["duplicate"] == 1 and counts["skipped"] == 1
    assert sum(e.type == "task_completed" for e in events) == 2
    with Receiver() as rx, FakeMediaServer(kind="jellyfin", key="K") as fake:
        # Default events (task_completed, task_failed, import_finished) and the default template.
        n = notifier(cfg_path, r, targets=[{"name": "hook", "url": rx.url}],
                     servers=[{"kind": "jellyfin", "url": fake.url, "api_key": "K"}])
        deliver_all(n, events)
        assert len(rx.requests) == 1
        body = rx.requests[0].json()
        assert body["event"] == "import_finished"
        root = str(plan.root)
        assert body["title"] == f"nassav: import of {root} finished: 2 imported, 0 conflicts, 2 left"
        assert body["message"] == ("left where they were: 1 duplicate, 1 skipped "
                                   "(each file's reason: GET /api/library/import/imp-notify)")
        data_dir = n.config.data_path
        assert sorted(fake.rescanned) == [str(data_dir / "DEMO-001"), str(data_dir / "DEMO-002")]


def test_a_target_opts_in_to_each_imported_title(imported, r):
    plan, events, cfg_path = imported
    with Receiver() as rx:
        n = notifier(cfg_path, r, targets=[{"name": "each", "url": rx.url, "events": ["task_completed:import"]}])
        deliver_all(n, events)
        got = sorted((q.json()["event"], q.json()["avid"]) for q in rx.requests)
        assert got == [("task_completed", "DEMO-001"), ("task_completed", "DEMO-002")]
        assert all(q.json()["data"]["kind"] == "import" for q in rx.requests)


def test_a_download_still_notifies_on_task_completed(r):
    download = Event("1-0", "task_completed", "ABC-123", "j1", "download", 0, {"status": "completed"})
    title = Event("2-0", "task_completed", "ABC-124", "j2", "import", 0, {"status": "completed", "kind": "import"})
    failed = Event("3-0", "task_failed", "ABC-125", "j3", "import", 0, {"status": "failed", "kind": "import"})
    default = ("task_completed", "task_failed", "import_finished")
    assert wants(default, download) and not wants(default, title) and not wants(default, failed)
    assert wants(("task_failed:import",), failed) and not wants(("task_failed:import",), title)
    assert wants(("task_completed",), title, quiet=())  # media servers rescan imported titles


def test_a_failed_import_says_why():
    e = Event("1-0", "import_finished", "", "imp-1", "import", 0,
              {"status": "failed", "message": "/x is not a readable folder", "counts": {}, "path": ""})
    f = msg.fields_of(e)
    assert f["summary"] == "import failed" and f["reason"] == "/x is not a readable folder"


@pytest.mark.parametrize("events", [["task_completed:"], ["Task_Completed"], ["task_completed:import:x"], [" "],
                                    ["task_completed:download"]])
def test_a_malformed_event_name_is_refused_with_the_form(events):
    with pytest.raises(ConfigError) as e:
        load(None, {}, notify={"targets": [{"name": "a", "url": "http://x", "events": events}]})
    assert e.value.key == "notify.targets[0].events" and "task_completed:import" in str(e.value)
