"""Notifications and media-server rescans against local receivers, on the real Redis.

Webhooks reach a real HTTP receiver that checks the HMAC and fails on purpose; Apprise's own
``json://`` / ``form://`` targets are pointed at it; Jellyfin, Emby and Plex are local fakes
that record the folder they were asked to rescan.
"""

from __future__ import annotations

import json

import pytest

from pipeline import deliveries as dv, notify_message as msg
from pipeline.avid import parse
from pipeline.config import NotifyTemplate, load
from pipeline.errors import ConfigError
from pipeline.events import Event, Events
from pipeline.notifier import NOTIFY_FAILED, Notifier, backoff_s
from pipeline.notify_dispatch import Dispatcher
from pipeline.notify_send import map_path, mask_url, sign
from pipeline.source_health import HEALTH_EVENT, SourceHealth
from pipeline.store import ResourceStore
from tests.notify_receivers import FakeMediaServer, Receiver

SECRET = "s3cret-hmac-key"


def cfg(tmp_path, redis_url, *, targets=(), servers=(), **notify):
    notify.setdefault("min_backoff_s", 0)
    notify.setdefault("max_backoff_s", 0)
    return load(None, {}, data_dir=str(tmp_path / "data"), redis_url=redis_url,
                notify={"targets": list(targets), **notify}, media_servers=list(servers))


def hook(url, **kw):
    return {"name": kw.pop("name", "hook"), "kind": "webhook", "url": url, "secret": SECRET,
            "events": kw.pop("events", ["task_completed", "task_failed"]), **kw}


def completed(r, avid="ABC-123"):
    """A job's completion as the worker appends it: the event, read back from the stream."""
    eid = Events(r).emit("task_completed", avid=avid, job_id="j1", stage="download",
                         data={"status": "completed", "message": f"{avid} done"})
    return Events(r).after("0")[-1] if eid else None


def deliver_until_final(n: Notifier, did: str, limit: int = 20) -> list[str]:
    """Run the attempts as the actor would (without the delays); the statuses seen."""
    seen, attempt = [], 1
    while attempt <= limit:
        out = n.deliver(did, attempt)
        seen.append(out.status)
        if out.retry_in_s is None:
            return seen
        attempt += 1
    raise AssertionError(f"still retrying after {limit} attempts: {seen}")


# -- config ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, key", [
    ({"notify": {"targets": [{"name": "a b", "url": "http://x"}]}}, "notify.targets[0].name"),
    ({"notify": {"targets": [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]}},
     "notify.targets[1].name"),
    ({"notify": {"targets": [{"name": "a", "kind": "sms", "url": "http://x"}]}}, "notify.targets[0].kind"),
    ({"notify": {"targets": [{"name": "a", "url": "ftp://x"}]}}, "notify.targets[0].url"),
    ({"notify": {"targets": [{"name": "a", "kind": "apprise"}]}}, "notify.targets[0].url"),
    ({"notify": {"targets": [{"name": "a", "url": "http://x", "events": []}]}}, "notify.targets[0].events"),
    ({"notify": {"targets": [{"name": "a", "url": "http://x", "template": {"title": "{avid.__class__}"}}]}},
     "notify.targets[0].template.title"),
    ({"notify": {"max_attempts": 0}}, "notify.max_attempts"),
    ({"media_servers": [{"kind": "kodi", "url": "http://x"}]}, "media_servers[0].kind"),
    ({"media_servers": [{"kind": "jellyfin", "url": "http://x"}]}, "media_servers[0].api_key"),
    ({"media_servers": [{"kind": "plex", "url": "http://x", "token": "t"}]}, "media_servers[0].section"),
    ({"media_servers": [{"kind": "emby", "url": "http://x", "api_key": "k", "path_map": {"data": "/m"}}]},
     "media_servers[0].path_map"),
])
def test_bad_notify_config_names_the_key_and_the_form(bad, key):
    with pytest.raises(ConfigError) as e:
        load(None, {}, **bad)
    assert e.value.key == key, str(e.value)


def test_an_apprise_url_is_never_echoed_in_a_config_error():
    with pytest.raises(ConfigError) as e:
        load(None, {}, notify={"targets": [{"name": "tg", "kind": "apprise", "urls": ["tgram-bot-TOKEN123"]}]})
    assert "TOKEN123" not in str(e.value) and "tgram://" in str(e.value)


def test_a_full_config_loads_with_plex_section_as_a_number():
    c = load(None, {}, notify={"public_url": "http://nas:8000", "targets": [
        {"name": "hook", "url": "http://10.0.0.2/h", "secret": "x", "events": ["disk_low", "source_health"]},
        {"name": "phone", "kind": "apprise", "urls": ["ntfy://nassav", "tgram://123:abc/456"],
         "template": {"title": "{summary}", "body": "{avid} {title} {cover_url}"}}]},
        media_servers=[{"kind": "plex", "url": "http://plex:32400", "token": "t", "section": 3},
                       {"name": "jf", "kind": "jellyfin", "url": "http://jf:8096", "api_key": "k",
                        "path_map": {"/data/av": "/media/av"}}])
    assert [t.name for t in c.notify.targets] == ["hook", "phone"]
    assert c.media_servers[0].section == 3 and c.media_servers[1].path_map == {"/data/av": "/media/av"}


# -- the message ----------------------------------------------------------------------------

def test_fields_and_template_from_a_failure():
    e = Event("1-0", "task_failed", "ABC-123", "j1", "resolve", 1.0,
              {"status": "failed", "reasons": ["missav: not found", "jable: blocked (HTTP 403)"]})
    f = msg.fields_of(e, title="A {title} with braces", public_url="http://nas:8000/")
    assert f["summary"] == "ABC-123 failed"
    assert f["reason"] == "missav: not found; jable: blocked (HTTP 403)"
    assert f["cover_url"] == "http://nas:8000/api/resource/cover?avid=ABC-123"
    title, body = msg.message(NotifyTemplate(title="[{event}] {avid}", body="{title}\n{source}\n{reason}"), f)
    # A value is put in as text: the braces in the title are not read as a field.
    assert title == "[task_failed] ABC-123"
    assert body == "A {title} with braces\nmissav: not found; jable: blocked (HTTP 403)"  # empty line dropped


def test_summaries_of_other_events():
    def s(t, **d):
        return msg.summary_of(Event("1-0", t, d.pop("avid", ""), "", "", 0, d))
    assert s(HEALTH_EVENT, source="jable", state="backoff") == "source jable is backing off"
    assert s(HEALTH_EVENT, source="jable", state="ok") == "source jable is healthy again"
    assert s("disk_low") == "disk space is low" and s("disk_ok") == "disk space is back"
    assert s("subscription_found", avid="ABC-9", name="studio-x") == "ABC-9 found by studio-x"


@pytest.mark.parametrize("path, mapping, want", [
    ("/data/av/ABC-123", {"/data/av": "/media/av"}, "/media/av/ABC-123"),
    ("/data/av/ABC-123", {"/data/av/": "/media/av/"}, "/media/av/ABC-123"),
    ("/data/av/ABC-123", {"/data": "/x", "/data/av": "/media/av"}, "/media/av/ABC-123"),  # longest wins
    ("/data/avx/ABC-123", {"/data/av": "/media/av"}, "/data/avx/ABC-123"),  # whole components only
    ("/data/av/ABC-123", {}, "/data/av/ABC-123"),
    ("/data/av/ABC-123", {"/data/av": "D:\\Media"}, "D:\\Media/ABC-123"),
])
def test_path_mapping(path, mapping, want):
    assert map_path(path, mapping) == want


def test_masked_urls_keep_no_path_or_query():
    assert mask_url("https://hooks.example.com/T000/B000/XXXX?token=abc") == "https://hooks.example.com/…"
    assert mask_url("http://127.0.0.1:8096") == "http://127.0.0.1:8096"


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_s(a, 5, 60) for a in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]


# -- webhooks ------------------------------------------------------------------------------

def test_webhook_is_signed_and_retried_after_500s(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=2) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url + "/in")], max_attempts=5), r)
        e = completed(r)
        [did] = n.dispatch(e)
        assert did == f"{e.id}.hook" and n.deliveries.get(did)["status"] == dv.QUEUED
        assert deliver_until_final(n, did) == ["retrying", "retrying", "delivered"]
        assert len(rx.requests) == 3 and all(q.signature_ok for q in rx.requests)
        body = rx.requests[-1].json()
        assert body["event"] == "task_completed" and body["avid"] == "ABC-123" and body["delivery_id"] == did
        assert body["title"] == "nassav: ABC-123 is in the library"
        assert rx.requests[-1].headers["x-nassav-event"] == "task_completed"
        assert rx.requests[-1].headers["x-nassav-signature"] == sign(SECRET, rx.requests[-1].body)
    rec = dv.decode(n.deliveries.get(did))
    assert rec["status"] == "delivered" and rec["attempts"] == 3 and rec["http_status"] == 200
    # A delivered record is final: another message for it (a redelivery) sends nothing.
    assert n.deliver(did, 4).status == "skipped"


def test_webhook_gives_up_after_max_attempts_and_reports_it(tmp_path, r, redis_url):
    with Receiver(secret=SECRET, fail_first=100) as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url, events=["task_completed", NOTIFY_FAILED])],
                         max_attempts=3), r)
        [did] = n.dispatch(completed(r))
        assert deliver_until_final(n, did) == ["retrying", "retrying", "failed"]
        assert len(rx.requests) == 3
    rec = dv.decode(n.deliveries.get(did))
    assert rec["status"] == "failed" and rec["attempts"] == 3 and rec["http_status"] == 500
    assert "answered 500" in rec["last_error"] and "failing on purpose" in rec["last_error"]
    failed = [x for x in Events(r).after("0") if x.type == NOTIFY_FAILED]
    assert len(failed) == 1 and failed[0].data["target"] == "hook" and failed[0].data["attempts"] == 3
    # The failure report is not sent to the target that failed (no loop feeding itself).
    assert n.dispatch(failed[0]) == []


def test_a_target_that_does_not_answer_is_retried_then_failed(tmp_path, r, redis_url):
    from tests.conftest import free_port

    n = Notifier(cfg(tmp_path, redis_url, targets=[hook(f"http://127.0.0.1:{free_port()}/")], max_attempts=2,
                     timeout_s=2), r)
    [did] = n.dispatch(completed(r))
    assert deliver_until_final(n, did) == ["retrying", "failed"]
    assert "no answer from http://127.0.0.1" in dv.decode(n.deliveries.get(did))["last_error"]


def test_a_wrong_signature_is_refused_by_the_receiver(tmp_path, r, redis_url):
    with Receiver(secret="another-key") as rx:
        n = Notifier(cfg(tmp_path, redis_url, targets=[hook(rx.url)], max_attempts=1), r)
        [did] = n.dispatch(completed(r))
        assert n.deliver(did, 1).status == "failed"
        assert rx.requests[0].signature_ok is False
    assert SECRET not in json.dumps(n.deliveries.get(did))


def test_events_not_chosen_make_no_delivery(tmp_path, r, redis_url):
    n = Notifier(cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/", events=["task_failed"])]), r)
    assert n.dispatch(completed(r)) == []
    assert n.event_types() == {"task_failed", "notify_test"}


def test_title_and_cover_come_from_the_library(tmp_path, r, redis_url):
    c = cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/")], public_url="http://nas:8000")
    ResourceStore(c.data_path).write_meta(parse("ABC-123"), {"title": "The Title"})
    n = Notifier(c, r)
    [did] = n.dispatch(completed(r))
    payload = json.loads(n.deliveries.get(did)["payload"])
    assert payload["fields"]["title"] == "The Title"
    assert payload["fields"]["cover_url"] == "http://nas:8000/api/resource/cover?avid=ABC-123"
    assert payload["message"] == "The Title\nhttp://nas:8000/api/resource/cover?avid=ABC-123"


# -- Apprise -----------------------------------------------------------------------------------

def test_apprise_json_and_form_targets_reach_the_receiver(tmp_path, r, redis_url):
    with Receiver() as rx:
        port = rx.port
        target = {"name": "phone", "kind": "apprise",
                  "urls": [f"json://127.0.0.1:{port}/apprise-json", f"form://127.0.0.1:{port}/apprise-form"],
                  "events": ["task_failed"], "template": {"title": "{summary}", "body": "{reason}"}}
        n = Notifier(cfg(tmp_path, redis_url, targets=[target]), r)
        eid = Events(r).emit("task_failed", avid="ABC-123", job_id="j", stage="resolve",
                             data={"status": "failed", "reasons": ["missav: not found"]})
        [did] = n.dispatch(Events(r).after("0")[-1])
        assert did == f"{eid}.phone"
        assert n.deliver(did, 1).status == "delivered"
        by_path = {q.path: q for q in rx.requests}
        assert set(by_path) == {"/apprise-json", "/apprise-form"}
        j = by_path["/apprise-json"].json()
        assert j["title"] == "ABC-123 failed" and j["message"] == "missav: not found"
        f = by_path["/apprise-form"].form()
        assert f["title"] == ["ABC-123 failed"] and f["message"] == ["missav: not found"]


def test_apprise_retries_while_the_service_fails(tmp_path, r, redis_url):
    with Receiver(fail_first=1) as rx:
        target = {"name": "phone", "kind": "apprise", "url": f"json://127.0.0.1:{rx.port}/a"}
        n = Notifier(cfg(tmp_path, redis_url, targets=[target], max_attempts=3), r)
        [did] = n.dispatch(completed(r))
        assert deliver_until_final(n, did) == ["retrying", "delivered"]
        assert len(rx.requests) == 2
        err = n.deliveries.get(did)["last_error"]
        assert err == ""  # cleared by the success


# -- media servers ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["jellyfin", "emby", "plex"])
def test_media_server_rescans_the_mapped_folder(tmp_path, r, redis_url, kind):
    with FakeMediaServer(kind=kind, key="KEY-1", section="3") as fake:
        c = cfg(tmp_path, redis_url)
        server = {"kind": kind, "url": fake.url, "path_map": {str(c.data_path): "/media/av"}}
        server.update({"token": "KEY-1", "section": 3} if kind == "plex" else {"api_key": "KEY-1"})
        n = Notifier(cfg(tmp_path, redis_url, servers=[server]), r)
        [did] = n.dispatch(completed(r, "ABC-123"))
        assert did.endswith("." + kind)
        assert n.deliver(did, 1).status == "delivered"
        assert fake.rescanned == ["/media/av/ABC-123"]
        q = fake.requests[0]
        if kind == "plex":
            assert q.method == "GET" and q.path == "/library/sections/3/refresh"
            assert "X-Plex-Token" not in q.query  # the token travels in a header, not the URL
        else:
            assert q.method == "POST" and q.path == "/Library/Media/Updated"
            assert q.json() == {"Updates": [{"Path": "/media/av/ABC-123", "UpdateType": "Modified"}]}


def test_media_server_with_a_wrong_key_is_recorded_failed(tmp_path, r, redis_url):
    with FakeMediaServer(kind="jellyfin", key="right") as fake:
        n = Notifier(cfg(tmp_path, redis_url, servers=[{"kind": "jellyfin", "url": fake.url, "api_key": "wrong"}],
                         max_attempts=2), r)
        [did] = n.dispatch(completed(r))
        assert deliver_until_final(n, did) == ["retrying", "failed"]
        assert fake.rescanned == []
    rec = dv.decode(n.deliveries.get(did))
    assert rec["http_status"] == 401 and "wrong" not in rec["last_error"]


def test_events_without_an_avid_rescan_nothing(tmp_path, r, redis_url):
    n = Notifier(cfg(tmp_path, redis_url, servers=[{"kind": "emby", "url": "http://127.0.0.1:9", "api_key": "k",
                                                    "events": ["task_completed", "disk_ok"]}]), r)
    Events(r).emit("disk_ok", avid="", job_id="", stage="disk", data={})
    assert n.dispatch(Events(r).after("0")[-1]) == []


# -- the dispatcher: one consumer group across workers ---------------------------------------------

def test_two_dispatchers_hand_out_each_event_once(tmp_path, r, redis_url):
    c = cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/", events=["task_completed", "disk_low"])])
    sent: list[str] = []
    a = Dispatcher(r, Notifier(c, r), sent.append, consumer="a")
    b = Dispatcher(r, Notifier(c, r), sent.append, consumer="b")
    assert a.ensure_group() is True and b.ensure_group() is False
    ev = Events(r)
    for i in range(30):
        ev.emit("task_completed", avid=f"ABC-{100 + i}", job_id=f"j{i}", stage="download", data={})
        ev.emit("progress_update", avid=f"ABC-{100 + i}", job_id=f"j{i}", stage="download", data={})
    ev.emit("disk_low", avid="", job_id="", stage="disk", data={"message": "3.1 GB free"})
    handled = 0
    for _ in range(4):
        handled += a.poll(block_ms=None) + b.poll(block_ms=None)
    assert handled == 61  # every entry acknowledged, the unwanted ones too
    assert len(sent) == len(set(sent)) == 31
    assert r.xpending("nassav:events", "nassav-notify")["pending"] == 0
    assert len(r.lrange(dv.LIST, 0, -1)) == 31


def test_an_event_read_twice_makes_one_delivery(tmp_path, r, redis_url):
    c = cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/")])
    sent: list[str] = []
    d = Dispatcher(r, Notifier(c, r), sent.append, consumer="a", claim_idle_ms=0)
    d.ensure_group()
    completed(r)
    # A consumer that read the entry and died before acknowledging it.
    r.xreadgroup("nassav-notify", "dead", {"nassav:events": ">"}, count=10)
    d.poll(block_ms=None)  # takes it over (idle ≥ 0 ms)
    d._last_claim = 0
    d.poll(block_ms=None)
    Notifier(c, r).dispatch(Events(r).after("0")[-1])  # and a stray second reading
    assert len(sent) == 1 and len(r.lrange(dv.LIST, 0, -1)) == 1


def test_a_new_group_does_not_replay_history(tmp_path, r, redis_url):
    completed(r)
    sent: list[str] = []
    d = Dispatcher(r, Notifier(cfg(tmp_path, redis_url, targets=[hook("http://127.0.0.1:9/")]), r), sent.append)
    d.ensure_group()
    assert d.poll(block_ms=None) == 0 and sent == []


# -- source health flips become events ---------------------------------------------------------------

def test_source_health_announces_backoff_and_recovery_once(r):
    events = Events(r)
    a, b = SourceHealth(r, events), SourceHealth(r, events)
    a.record("jable", "blocked", "HTTP 403")  # one failure: no back-off yet
    assert [e for e in events.after("0") if e.type == HEALTH_EVENT] == []
    b.record("jable", "blocked", "HTTP 403")
    a.record("jable", "upstream error", "timeout")  # still in back-off: no second event
    b.record("jable", "found")
    a.record("jable", "not found")
    flips = [e.data for e in events.after("0") if e.type == HEALTH_EVENT]
    assert [(f["source"], f["state"], f["previous"]) for f in flips] == [("jable", "backoff", "ok"),
                                                                          ("jable", "ok", "backoff")]
    assert flips[0]["failures"] == 2 and flips[0]["detail"] == "HTTP 403"
    SourceHealth(r).record("missav", "blocked")  # without an event stream: silent, as before
    SourceHealth(r).record("missav", "blocked")
    assert len([e for e in events.after("0") if e.type == HEALTH_EVENT]) == 2


def test_the_readme_examples_load(tmp_path):
    import re

    import yaml

    from tests.conftest import ROOT

    for readme in ("README.md", "README.zh-CN.md"):
        blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / readme).read_text(encoding="utf-8"), re.S)
        ours = [yaml.safe_load(b) for b in blocks if b.startswith(("notify:", "media_servers:"))]
        assert len(ours) == 2, readme
        c = load(None, {}, **ours[0], **ours[1])
        assert [t.name for t in c.notify.targets] == ["phone", "home-assistant"]
        assert [m.kind for m in c.media_servers] == ["jellyfin", "plex"]
        assert c.notify.targets[0].template.body == "{title}\n{reason}\n{cover_url}"


def test_apprise_never_logs_a_service_url(tmp_path, r, redis_url):
    import logging

    # The product's log handlers sit on the root logger (pipeline/logs.py): collect what reaches it.
    class Collect(logging.Handler):
        lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    root = logging.getLogger()
    handler, level = Collect(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        # Apprise masks some secrets in its log lines, not these: it would log both whole.
        target = {"name": "tg", "kind": "apprise", "urls": ["discord://BOTTOKEN", "nosuch://BOTTOKEN/x"]}
        n = Notifier(cfg(tmp_path, redis_url, targets=[target], max_attempts=1), r)
        [did] = n.dispatch(completed(r))
        assert n.deliver(did, 1).status == "failed"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    rec = dv.decode(n.deliveries.get(did))
    assert rec["last_error"] == "tg: Apprise does not read URL #1 (discord://…)"
    assert any("given up after 1 attempts" in line for line in Collect.lines)
    assert not [line for line in Collect.lines if "BOTTOKEN" in line] and "BOTTOKEN" not in json.dumps(rec)


def test_unreadable_apprise_urls_are_named_masked():
    from pipeline.notify_send import unreadable_apprise_urls

    c = load(None, {}, notify={"targets": [{"name": "tg", "kind": "apprise",
                                            "urls": ["json://127.0.0.1:9/x", "discord://ONLYTOKEN"]}]})
    assert unreadable_apprise_urls(c.notify.targets[0]) == ["#2 (discord://…)"]
