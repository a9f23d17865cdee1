"""End to end: a real ``nassav worker`` serving the notify queue, a job completing on the real
Redis, a webhook (failing twice first) and a fake Jellyfin reached; the API shows the deliveries."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from gateway.cli.main import build_parser
from pipeline import jobs as jobstates
from pipeline.jobs import Jobs
from tests.api_helpers import gateway
from tests.conftest import ROOT, stop_group, wait_for
from tests.notify_receivers import FakeMediaServer, Receiver

SECRET = "e2e-hmac-key"


def _status(r, did):
    return r.hget(f"nassav:notify:delivery:{did}", "status")


def test_a_completed_job_reaches_the_webhook_and_the_media_server(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with Receiver(secret=SECRET, fail_first=2) as rx, FakeMediaServer(kind="jellyfin", key="JF-KEY") as jf:
        notify = {"min_backoff_s": 0.2, "max_backoff_s": 0.5, "max_attempts": 5, "public_url": "http://nas:8000",
                  "targets": [{"name": "hook", "url": rx.url + "/nassav", "secret": SECRET,
                               "events": ["task_completed"]}]}
        servers = [{"name": "jf", "kind": "jellyfin", "url": jf.url, "api_key": "JF-KEY",
                    "path_map": {str(data.resolve()): "/media/av"}}]
        conf = tmp_path / "c.yaml"
        conf.write_text(yaml.safe_dump({"data_dir": str(data), "redis_url": redis_url, "notify": notify,
                                        "media_servers": servers, "workers": {"sweep_interval_s": 0}}))
        log = open(tmp_path / "worker.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "--queues", "notify",
                                 "--config", str(conf)], cwd=ROOT, env=dict(os.environ, NASSAV_REDIS_URL=redis_url),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def dispatcher_up():
                if proc.poll() is not None:
                    raise AssertionError((tmp_path / "worker.log").read_text())
                return r.exists("nassav:events") and any(
                    g["name"] == "nassav-notify" for g in r.xinfo_groups("nassav:events"))
            wait_for(dispatcher_up, 30, 0.1, "the notify dispatcher")

            jobs = Jobs(r)
            sub = jobs.submit("ABC-123", "download")
            event_id = jobs.finish(sub.job_id, "ABC-123", jobstates.COMPLETED, stage="download",
                                   message="ABC-123 done")
            hook_id, jf_id = f"{event_id}.hook", f"{event_id}.jf"
            wait_for(lambda: _status(r, hook_id) == "delivered" and _status(r, jf_id) == "delivered", 60, 0.1,
                     "both deliveries")
        finally:
            stop_group(proc)
            log.close()
        assert len(rx.requests) == 3 and all(q.signature_ok for q in rx.requests)
        assert rx.requests[-1].json()["avid"] == "ABC-123"
        assert jf.rescanned == ["/media/av/ABC-123"]

    with gateway(data, redis_url, notify=notify, media_servers=servers) as c:
        got = c.get("/api/notifications/deliveries").json()["data"]
        by_id = {d["id"]: d for d in got}
        assert by_id[hook_id]["status"] == "delivered" and by_id[hook_id]["attempts"] == 3
        assert by_id[jf_id]["kind"] == "jellyfin" and by_id[jf_id]["attempts"] == 1
        assert "payload" not in by_id[hook_id]
        only = c.get("/api/notifications/deliveries?target=jf").json()["data"]
        assert [d["id"] for d in only] == [jf_id]
        assert c.get("/api/notifications/deliveries?status=failed").json()["data"] == []


def test_targets_are_shown_with_secrets_masked(tmp_path, r, redis_url):
    notify = {"targets": [
        {"name": "hook", "url": "https://hooks.example.com/T0/B0/tok-SECRETPATH?x=1", "secret": "HMACSECRET"},
        {"name": "phone", "kind": "apprise", "urls": ["tgram://123456:BOTTOKEN/987"]}]}
    servers = [{"kind": "plex", "url": "http://plex:32400", "token": "PLEXTOKEN", "section": 2}]
    with gateway(tmp_path / "data", redis_url, notify=notify, media_servers=servers) as c:
        res = c.get("/api/notifications/targets")
        assert res.status_code == 200
        text = res.text
        for secret in ("SECRETPATH", "HMACSECRET", "BOTTOKEN", "PLEXTOKEN"):
            assert secret not in text
        by = {t["name"]: t for t in res.json()["data"]}
        assert by["hook"]["urls"] == ["https://hooks.example.com/…"] and by["hook"]["signed"] is True
        assert by["phone"]["urls"] == ["tgram://…"]
        assert by["plex"]["section"] == "2" and by["plex"]["has_key"] is True


def test_bad_delivery_queries_are_400s_naming_the_form(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        res = c.get("/api/notifications/deliveries?status=stuck")
        assert res.status_code == 400 and "queued, retrying, delivered, failed, lost" in res.json()["message"]
        res = c.get("/api/notifications/deliveries?target=nope")
        assert res.status_code == 400 and "(none configured)" in res.json()["message"]
        assert c.get("/api/notifications/deliveries?limit=0").status_code == 400
        assert c.get("/api/notifications/deliveries").json()["data"] == []


def test_workers_serve_the_notify_queue_by_default():
    assert build_parser().parse_args(["worker"]).queues == ["metadata", "download", "notify"]


def test_a_test_notification_reaches_its_target_only(tmp_path, r, redis_url):
    from pipeline.notifier import Notifier
    from pipeline.notify_dispatch import Dispatcher

    with Receiver(secret=SECRET) as rx:
        notify = {"targets": [{"name": "hook", "url": rx.url, "secret": SECRET, "events": ["disk_low"]},
                              {"name": "other", "url": rx.url + "/other", "events": ["disk_low"]}]}
        with gateway(tmp_path / "data", redis_url, notify=notify) as c:
            sent: list[str] = []
            d = Dispatcher(r, Notifier(c.st.config, r), sent.append)
            d.ensure_group()
            res = c.post("/api/notifications/test", json={"target": "hook", "avid": "abc-123"})
            assert res.status_code == 202, res.text
            got = res.json()
            assert "no live worker serves the notify queue" in got["message"]
            d.poll(block_ms=None)
            assert sent == [got["data"]["delivery_id"]]
            assert Notifier(c.st.config, r).deliver(sent[0], 1).status == "delivered"
            q = rx.requests[0]
            assert q.path == "/" and q.signature_ok and q.json()["event"] == "notify_test"
            assert q.json()["avid"] == "ABC-123" and q.json()["title"] == "nassav: a test notification"
            bad = c.post("/api/notifications/test", json={"target": "nope"})
            assert bad.status_code == 400 and "hook, other" in bad.json()["message"]
            bad = c.post("/api/notifications/test", json={"target": "hook", "avid": "../x"})
            assert bad.status_code == 400 and "accepted forms" in bad.json()["message"]
