"""The small pure parts moved out of the stages: progress text, the cover step without a URL,
and the cancel watcher."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from pipeline.avid import parse
from pipeline.config import load
from pipeline.http import HttpClient
from pipeline.library import fetch_cover, site_root, write_nfo
from pipeline.progress import format_eta, format_speed, progress_fields
from pipeline.store import ResourceStore
from pipeline.watch import cancel_when


def test_progress_text():
    assert format_speed(512) == "512.0 B/s" and format_speed(1536 * 1024) == "1.5 MB/s"
    assert format_speed(5 * 1024 ** 4) == "5120.0 GB/s"
    assert format_eta(None) == "" and format_eta(3723.9) == "1:02:03"
    p = SimpleNamespace(percent=42.345, speed_bytes_per_s=2048.4, eta_s=61, bytes_done=10,
                        segments_done=1, segments_total=3)
    assert progress_fields(p) == {"percent": 42.3, "speed": "2.0 KB/s", "eta": "0:01:01", "bytes_done": 10,
                                  "segments_done": 1, "segments_total": 3, "speed_bytes_per_s": 2048}


def test_no_cover_url_is_a_warning_and_the_nfo_still_comes(tmp_path):
    cfg = load(None, {})
    store, avid = ResourceStore(tmp_path), parse("ABC-123")
    store.update_meta(avid, title="t")
    with HttpClient(cfg.http) as client:
        got = fetch_cover(store, client, avid, store.read_meta(avid), cfg.library)
    assert got.warning == "no cover: no cover URL known" and got.report == {"url": None, "errors": []}
    write_nfo(store, avid, cfg.library)
    assert store.nfo(avid).read_bytes().startswith(b"<")
    assert site_root("https://www.javbus.com/ABC-123?x=1") == "https://www.javbus.com/"


def test_cancel_when_sets_the_event_from_either_check_and_ignores_a_failing_poll():
    flag = threading.Event()
    polls = []

    def poll():
        polls.append(1)
        if len(polls) == 1:
            raise ConnectionError("Redis blip")
        return len(polls) >= 3

    with cancel_when(threading.Event(), now=flag.is_set, poll=poll, tick_s=0.01,
                     poll_interval_s=0.02) as cancel:
        assert cancel.wait(10)  # set by the third poll, after a failing one
    assert len(polls) == 3
    with cancel_when(threading.Event(), now=flag.is_set, poll=lambda: False, tick_s=0.01) as cancel:
        flag.set()
        assert cancel.wait(10)
    with cancel_when(threading.Event(), now=lambda: False, poll=lambda: False) as cancel:
        pass
    assert cancel.is_set()  # leaving the block sets it, which ends the watcher thread
