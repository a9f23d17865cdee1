"""One subscription check over a 10-page listing: how long it takes and how many requests it makes.

    python -m tools.bench_subscriptions [--pages 10] [--runs 5] [--interval 0]

Serves a search listing of ``pages`` × 30 titles on the fixture site, follows it with no
backfill cap (so the first check reads every page and queues every title, through the real
submit script on a real Redis and real Dramatiq messages), and times the check as a worker
runs it (``actors.following.check_one``). Then a title is added and a second check is timed:
the steady state, which stops at the first page. Requests are counted twice: by the check's
own record and by the fixture server (so a hidden retry would show). ``--interval`` sets the
catalogue's ``min_interval_s`` (the real default is 0 on JavBus's config; a paced site adds
pages × interval). A private embedded Redis is started unless ``REDIS_URL`` is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from actors import following
from actors.context import Context
from actors.registry import declare
from pipeline.broker import make_broker
from pipeline.config import load
from pipeline.embedded_redis import EmbeddedRedis
from pipeline.redis_client import connect
from pipeline.subscriptions import Subscriptions, parse_request
from tools.fixture_site import FixtureSite
from tools.fixture_site.sites._javbus_layout import PAGE_SIZE


def _clean(client) -> None:
    for pattern in ("nassav:*", "nassav-dramatiq:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


def run(redis_url: str, pages: int, runs: int, interval_s: float, tmp: Path) -> dict:
    titles = [f"BENCH-{i:04d}" for i in range(1, pages * PAGE_SIZE + 1)]
    first, steady, reqs_first, reqs_steady, served_first = [], [], [], [], []
    client = connect(redis_url)
    extra = {"catalogues": {n: {"min_interval_s": interval_s} for n in ("javbus", "busdmm", "dmmsee")},
             "subscriptions": {"max_pages": max(20, pages + 1)}}
    for n in range(runs):
        _clean(client)
        # A fresh site each run: the title added by the last run would make an 11th page.
        with FixtureSite.start(titles=titles, stream_kind="clear", duration_s=4, segment_s=2) as fx:
            cfg = load(fx.write_config(tmp / "nassav.yaml", data_dir=tmp / f"data-{n}", redis_url=redis_url,
                                       extra=extra), {})
            ctx = Context.create(cfg, redis_url)
            broker = make_broker(redis_url, cfg.workers)
            actors = declare(broker, cfg)
            try:
                subs = Subscriptions(client)
                sub = parse_request({"kind": "search", "id_or_query": "BENCH", "backfill": 10_000})
                subs.add(sub)
                before = fx.stats()["requests"].get("javbus", 0)
                t0 = time.perf_counter()
                rec = following.check_one(ctx, subs, sub, actors.start)
                first.append(time.perf_counter() - t0)
                served_first.append(fx.stats()["requests"].get("javbus", 0) - before)
                assert rec.pages == pages and len(rec.queued) == pages * PAGE_SIZE, (rec.stopped, rec.errors)
                reqs_first.append(rec.requests)
                fx.add_title("BENCH-9000", release_date="2031-01-01")
                t0 = time.perf_counter()
                rec2 = following.check_one(ctx, subs, sub, actors.start)
                steady.append(time.perf_counter() - t0)
                assert list(rec2.queued) == ["BENCH-9000"] and rec2.pages == 1, rec2.stopped
                reqs_steady.append(rec2.requests)
            finally:
                broker.close()
                ctx.redis.close()
    _clean(client)
    client.close()
    return {"pages": pages, "titles": pages * PAGE_SIZE, "runs": runs, "interval_s": interval_s,
            "first_s": first, "steady_s": steady, "requests_first": reqs_first,
            "served_first": served_first, "requests_steady": reqs_steady}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.0, help="the catalogue's min_interval_s")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-subs-") as d:
        tmp = Path(d)
        server = None
        url = os.environ.get("REDIS_URL")
        if not url:
            server = EmbeddedRedis(tmp / "redis")
            server.start()
            url = server.url
        try:
            res = run(url, a.pages, a.runs, a.interval, tmp)
        finally:
            if server:
                server.stop()
    med = statistics.median
    print(f"listing: {res['pages']} pages, {res['titles']} titles, catalogue interval {res['interval_s']} s, "
          f"{res['runs']} runs")
    print(f"first check (reads every page, queues {res['titles']}): median {med(res['first_s']) * 1000:.0f} ms "
          f"(min {min(res['first_s']) * 1000:.0f}, max {max(res['first_s']) * 1000:.0f}); "
          f"requests {sorted(set(res['requests_first']))} (served by the fixture: {sorted(set(res['served_first']))})")
    print(f"next check (one new title): median {med(res['steady_s']) * 1000:.1f} ms "
          f"(min {min(res['steady_s']) * 1000:.1f}, max {max(res['steady_s']) * 1000:.1f}); "
          f"requests {sorted(set(res['requests_steady']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
