"""Subscriptions checked by two real worker processes on one Redis, against the fixture site.

Three overlapping subscriptions (two searches that share titles, and a maker) are followed;
both ``nassav worker --queues metadata`` processes tick every 0.2 s. Every title is queued
exactly once across the cluster (one ``queued`` event per AVID, whichever subscription or
worker found it), no subscription is ever checked by two workers at once (the check records'
time spans never overlap), a new release between two checks is queued once more, and the
metadata jobs the checks queued run to the end.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from pipeline.events import Events
from pipeline.subscriptions import Subscriptions, parse_request
from tests.conftest import stop_group, wait_for
from tests.test_scale_out import spawn
from tools.fixture_site import FixtureSite
from tools.fixture_site.sites._javbus_layout import listing_id, listing_titles

TITLES = [f"SUBW-{i:03d}" for i in range(1, 13)]


@pytest.fixture
def cluster(tmp_path, r, redis_url):
    site = FixtureSite.start(titles=TITLES, stream_kind="clear", duration_s=4.0, segment_s=2.0)
    cfg = site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                            extra={"subscriptions": {"tick_s": 0.2}})
    env = dict(os.environ, NASSAV_REDIS_URL=redis_url)
    log = open(tmp_path / "workers.log", "wb")
    procs = [spawn(["worker", "--queues", "metadata", "--config", str(cfg)], env, log) for _ in range(2)]
    try:
        wait_for(lambda: len(r.hgetall("nassav:workers")) == 2, 60, 0.2, "two workers")
        yield site, tmp_path / "workers.log"
    finally:
        for p in procs:
            stop_group(p)
        log.close()
        site.stop()


def test_two_worker_processes_queue_each_title_once(cluster, r):
    site, log = cluster
    maker = site.title("SUBW-001").studio
    subs = Subscriptions(r)
    followed = [parse_request({"kind": "search", "id_or_query": "SUBW", "backfill": 100}),
                parse_request({"kind": "search", "id_or_query": "SUBW-00", "backfill": 100}),
                parse_request({"kind": "maker", "id_or_query": listing_id(maker), "backfill": 100})]
    for s in followed:
        assert subs.add(s)

    def checked(n):
        return all(subs.status(s.id)["checks_done"] >= n for s in followed)
    wait_for(lambda: checked(1), 60, 0.2, "a first check of every subscription")
    site.add_title("SUBW-100", release_date="2031-01-01")
    for s in followed:
        subs.check_now(s.id)
    wait_for(lambda: checked(2), 60, 0.2, "a second check of every subscription")

    events = Events(r).after("0")
    queued = Counter(e.avid for e in events if e.type == "queued")
    assert queued == Counter({a: 1 for a in [*TITLES, "SUBW-100"]}), log.read_text()[-3000:]
    found = Counter(e.avid for e in events if e.type == "subscription_found")
    assert found == queued  # each title found (and queued) by one subscription only
    maker_found = {e.avid for e in events
                   if e.type == "subscription_found" and e.data["subscription"] == followed[2].id}
    assert maker_found <= {t.avid for t in listing_titles(site.titles, "studio", listing_id(maker))}

    for s in followed:
        records = sorted(subs.status(s.id)["checks"], key=lambda c: c["ts"])
        assert all(c["errors"] == [] for c in records)
        for a, b in zip(records, records[1:]):  # one worker at a time: spans never overlap
            assert a["ts"] + a["duration_ms"] / 1000 <= b["ts"], (a, b)
    workers = {c["worker"] for s in followed for c in subs.status(s.id)["checks"]}
    assert workers and all(":" in w for w in workers)

    def all_done():
        ends = {e.avid for e in Events(r).after("0") if e.type in ("task_completed", "task_failed")}
        return ends >= set(queued)
    wait_for(all_done, 120, 0.3, "the metadata jobs the checks queued")
    failed = [e for e in Events(r).after("0") if e.type == "task_failed"]
    assert not failed, [(e.avid, e.data.get("message")) for e in failed]
