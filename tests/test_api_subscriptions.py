"""``/api/subscriptions``: follow, list, show checks, check now, unfollow — on a live gateway,
the real Redis and the fixture site; the check runs as a worker runs it; its events reach
WebSocket and SSE subscribers."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect as ws_connect

from actors import following
from actors.context import Context
from actors.registry import declare
from pipeline.broker import make_broker
from pipeline.config import load
from pipeline.subscriptions import Subscriptions
from tests.e2e_helpers import http
from tests.live_server import SSE, live_gateway, wait_subscribers
from tools.fixture_site import FixtureSite
from tools.fixture_site.sites._javbus_layout import listing_titles


@pytest.fixture(scope="module")
def fx():
    with FixtureSite.start(titles=[f"APIS-{i:03d}" for i in range(1, 8)], stream_kind="clear",
                           duration_s=4, segment_s=2) as site:
        yield site


@pytest.fixture
def gw(redis_url, r, tmp_path):
    with live_gateway(tmp_path / "data", redis_url) as g:
        yield g


@pytest.fixture
def worker(fx, gw, redis_url, tmp_path):
    cfg = load(fx.write_config(tmp_path / "w.yaml", data_dir=tmp_path / "data", redis_url=redis_url), {})
    ctx = Context.create(cfg, redis_url)
    broker = make_broker(redis_url, cfg.workers)
    actors = declare(broker, cfg)
    yield lambda: following.tick(ctx, actors.start)
    broker.close()
    ctx.redis.close()


def call(gw, method, path, body=None):
    return http(method, gw.base + path, body)


def test_follow_check_show_unfollow(fx, gw, worker):
    status, res = call(gw, "POST", "/api/subscriptions",
                       {"kind": "search", "id_or_query": "APIS", "backfill": 3, "action": "metadata",
                        "filters": {"since": "2000-01-01"}})
    assert status == 201 and res["code"] == 201
    sub = res["data"]
    assert (sub["kind"], sub["id_or_query"], sub["backfill"], sub["filters"]["since"]) == \
        ("search", "APIS", 3, "2000-01-01")
    status, res = call(gw, "POST", "/api/subscriptions", {"kind": "search", "id_or_query": "apis"})
    assert status == 409 and res["data"]["id"] == sub["id"]

    sse = SSE(gw.base, "/api/events")
    try:
        with ws_connect(gw.ws + "/ws/tasks/") as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "queue_status"
            assert sse.next()["data"]["type"] == "queue_status"
            wait_subscribers(gw, 2)
            [rec] = worker()  # due at once: the first tick checks it
            newest = [t.avid for t in listing_titles(fx.titles, "search", "APIS")][:3]
            assert list(rec.queued) == newest

            def kinds(messages):
                return [(m["type"], m["data"].get("avid")) for m in messages
                        if m["type"].startswith("subscription_")]
            want = [*[("subscription_found", a) for a in newest], ("subscription_checked", "")]
            got_ws = []
            while len(kinds(got_ws)) < 4:
                got_ws.append(json.loads(ws.recv(timeout=5)))
            assert kinds(got_ws) == want
            got_sse = []
            while len(kinds(got_sse)) < 4:
                got_sse.append(sse.next()["data"])
            assert kinds(got_sse) == want
            assert got_sse[-1]["data"]["subscription"] == sub["id"]
    finally:
        sse.close()

    status, res = call(gw, "GET", f"/api/subscriptions/{sub['id']}")
    assert status == 200
    shown = res["data"]
    assert shown["checks_done"] == 1 and shown["newest"] == newest[0] and shown["next_due"] > 0
    assert shown["pending"] == 0  # every title it met was queued or skipped
    [check] = shown["checks"]
    assert check["pages"] == 1 and check["new"][:3] == newest and list(check["queued"]) == newest
    assert check["errors"] == [] and check["ts"] > 0
    status, res = call(gw, "GET", "/api/subscriptions")
    assert [s["id"] for s in res["data"]] == [sub["id"]]
    assert res["data"][0]["last_check_record"]["pages"] == 1

    assert worker() == []  # not due again
    assert call(gw, "POST", f"/api/subscriptions/{sub['id']}/check")[0] == 202
    [rec2] = worker()
    assert rec2.queued == {} and rec2.stopped == f"met {newest[0]}, seen before"

    assert call(gw, "DELETE", f"/api/subscriptions/{sub['id']}")[0] == 200
    assert call(gw, "GET", f"/api/subscriptions/{sub['id']}")[0] == 404
    assert call(gw, "DELETE", f"/api/subscriptions/{sub['id']}")[0] == 404
    assert call(gw, "POST", f"/api/subscriptions/{sub['id']}/check")[0] == 404


@pytest.mark.parametrize("body, words", [
    ({"kind": "studio", "id_or_query": "x"}, "kind must be one of actress, maker, label, series, director, search"),
    ({"kind": "actress"}, "id_or_query must be"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"since": "May"}}, "filters.since must be a date YYYY-MM-DD"),
    ({"kind": "actress", "id_or_query": "x", "action": "stream"}, "action must be metadata"),
    ([1, 2], "the body must be a JSON object"),
])
def test_bad_requests_are_400_naming_the_accepted_form(gw, body, words):
    status, res = call(gw, "POST", "/api/subscriptions", body)
    assert status == 400 and words in res["message"]
    if isinstance(body, dict):  # the field it names, for a form to show the message beside it
        field = words.split(" must be")[0]
        assert res["data"]["field"] == field and res["data"]["expected"] in res["message"]


def test_a_bad_or_unknown_id(gw):
    status, res = call(gw, "GET", "/api/subscriptions/nope")
    assert status == 400 and "12 hexadecimal digits" in res["message"]
    assert call(gw, "GET", "/api/subscriptions/0123456789ab")[0] == 404


def test_the_command_line_follows_lists_and_unfollows(gw, r, capsys, monkeypatch):
    from gateway.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the table to the terminal's width
    from pipeline.subscriptions import subscription_id

    url = ["--url", gw.base]
    assert main(["follow", "actress", "okq", "--backfill", "5", "--since", "2024-01-01",
                 "--edition", "C", "--action", "download", *url]) == 0
    sub_id = subscription_id("actress", "okq")
    assert f"id {sub_id}" in capsys.readouterr().out
    assert main(["follow", "actress", "okq", *url]) == 1
    assert "already followed" in capsys.readouterr().out
    assert main(["follow", "maker", "x", "--since", "2024-1-1", *url]) == 1
    assert "filters.since must be a date YYYY-MM-DD" in capsys.readouterr().out

    shown = http("GET", f"{gw.base}/api/subscriptions/{sub_id}")[1]["data"]
    assert (shown["action"], shown["backfill"], shown["filters"]["editions"]) == ("download", 5, ["C"])
    assert main(["subscriptions", *url]) == 0
    out = capsys.readouterr().out
    assert sub_id in out and "not checked yet" in out
    monkeypatch.setenv("COLUMNS", "80")  # a common terminal: the id the other commands take stays whole
    assert main(["subscriptions", *url]) == 0
    assert sub_id in capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["subscriptions", sub_id, "--check", *url]) == 0
    assert "due now" in capsys.readouterr().out
    # What a check killed before queueing a title leaves (tests/test_subscriptions_resume.py kills one).
    assert Subscriptions(r).mark_seen(sub_id, "ABC-123", {"title": "t"})
    assert http("GET", f"{gw.base}/api/subscriptions")[1]["data"][0]["pending"] == 1
    assert main(["subscriptions", sub_id, *url]) == 0
    assert "1 pending (the next check queues or skips them)" in capsys.readouterr().out
    assert main(["unfollow", sub_id, *url]) == 0
    assert main(["unfollow", sub_id, *url]) == 1
    assert "no subscription" in capsys.readouterr().out


def test_the_routes_are_in_the_openapi_document(gw):
    paths = http("GET", gw.base + "/openapi.json")[1]["paths"]
    assert {"get", "post"} <= set(paths["/api/subscriptions"])
    assert {"get", "delete"} <= set(paths["/api/subscriptions/{sub_id}"])
    assert "post" in paths["/api/subscriptions/{sub_id}/check"]
    body = str(paths["/api/subscriptions"]["post"])
    assert "id_or_query" in body and "backfill" in body
