"""End to end through `nassav up`: a real download from the fixture site ends in a signed webhook
(after a 500) and a rescan of the mapped folder on a fake Jellyfin, with no worker flag given."""

from __future__ import annotations

import json

from pipeline import deliveries as dv
from tests.conftest import wait_for
from tests.e2e_helpers import Service, http
from tests.notify_receivers import FakeMediaServer, Receiver
from tools.fixture_site import FixtureSite

SECRET = "up-hmac-key"


def test_a_download_notifies_and_rescans(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=("DEMO-001",), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data = tmp_path / "data"
    data.mkdir()
    with Receiver(secret=SECRET, fail_first=1) as rx, FakeMediaServer(kind="emby", key="EMBY") as emby:
        extra = {"notify": {"min_backoff_s": 0.2, "max_backoff_s": 1, "public_url": "http://nas:8000",
                            "targets": [{"name": "hook", "url": rx.url, "secret": SECRET,
                                         "events": ["task_completed", "task_failed"],
                                         "template": {"title": "{summary}", "body": "{title} {cover_url}"}}]},
                 "media_servers": [{"kind": "emby", "url": emby.url, "api_key": "EMBY",
                                    "path_map": {str(data.resolve()): "/mnt/library"}}]}
        cfg = site.write_config(tmp_path / "c.yaml", data_dir=data, redis_url=redis_url, extra=extra)
        svc = Service(cfg, data)
        try:
            svc.wait_ready()
            wait_for(lambda: r.exists("nassav:events") and any(
                g["name"] == "nassav-notify" for g in r.xinfo_groups("nassav:events")), 30, 0.1,
                "the notify dispatcher of the metadata worker")
            code, body = http("POST", svc.base + "/api/downloads/DEMO-001")
            assert code == 202, body

            def both_delivered():
                code, got = http("GET", svc.base + "/api/notifications/deliveries")
                items = got["data"] if code == 200 else []
                done = {d["target"]: d for d in items if d["status"] == dv.DELIVERED}
                return done if {"hook", "emby"} <= set(done) else None
            done = wait_for(both_delivered, 120, 0.3, "the webhook and the rescan")
        finally:
            svc.stop()
            site.stop()
        assert done["hook"]["attempts"] == 2 and done["hook"]["event"] == "task_completed"
        assert done["emby"]["attempts"] == 1 and done["emby"]["avid"] == "DEMO-001"
        assert emby.rescanned == ["/mnt/library/DEMO-001"]
        assert len(rx.requests) == 2 and all(q.signature_ok for q in rx.requests)
        sent = rx.requests[-1].json()
        meta = json.loads((data / "DEMO-001" / "DEMO-001.json").read_text())
        assert sent["avid"] == "DEMO-001" and sent["title"] == "DEMO-001 is in the library"
        assert sent["message"] == f"{meta['title']} http://nas:8000/api/resource/cover?avid=DEMO-001"
        assert (data / "DEMO-001" / "DEMO-001.mp4").exists()
