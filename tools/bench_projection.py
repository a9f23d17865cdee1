"""CPU cost of the library index's projection (``Projection.apply``), not a timed test.

Two shapes of traffic, on a private embedded Redis and a fresh index in a temp dir (no library
folders, so a sync finds nothing to read: what is measured is the projection's own work):

- ``burst``: one ``queued`` event per batch, as a burst of submissions arrives (the ingest
  benchmark's traffic); the projection wakes for nearly every event.
- ``jobs``: whole download lifecycles (queued, started, four stages, 20 progress events, done)
  in batches of 500, as a busy pipeline delivers them.

    .venv/bin/python tools/bench_projection.py             # ~10 s
    .venv/bin/python tools/bench_projection.py --rounds 5

Run it in two checkouts to compare commits (it measures the checkout it lives in).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever is installed

import redis.asyncio as aioredis  # noqa: E402

from gateway.index import LibraryIndex  # noqa: E402
from gateway.projection import Projection  # noqa: E402
from pipeline import events as ev  # noqa: E402
from pipeline.embedded_redis import EmbeddedRedis  # noqa: E402
from pipeline.events import Event  # noqa: E402
from pipeline.redis_client import DECODED  # noqa: E402


def lifecycle(i: int) -> list[Event]:
    """One download job's events (32, of which 20 progress)."""
    job, avid, t = f"job{i:07d}", f"ABC-{i % 900 + 100:03d}", 1000.0 + i
    out = [Event(f"{i}-0", ev.QUEUED, avid, job, "queued", t, {"status": "queued", "kind": "download"}),
           Event(f"{i}-1", ev.TASK_STARTED, avid, job, "resolve", t + .1, {"status": "running", "kind": "download"})]
    for k, stage in enumerate(("resolve", "scrape", "cover", "download")):
        out.append(Event(f"{i}-{2 + 2 * k}", ev.STAGE_STARTED, avid, job, stage, t + .2 + k, {"worker": "w"}))
        out.append(Event(f"{i}-{3 + 2 * k}", ev.STAGE_FINISHED, avid, job, stage, t + .3 + k,
                         {"worker": "w", "source": "missav"}))
    out += [Event(f"{i}-{20 + p}", ev.PROGRESS, avid, job, "download", t + 5 + p / 10, {"percent": p * 5})
            for p in range(20)]
    out.append(Event(f"{i}-99", ev.TASK_COMPLETED, avid, job, "download", t + 9,
                     {"status": "completed", "message": "done"}))
    return out


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d, EmbeddedRedis(Path(d) / "redis") as redis_server:
        client = aioredis.Redis.from_url(redis_server.url, **DECODED)
        index = LibraryIndex(Path(d) / "data")
        p = Projection(client, index)
        await client.xadd(ev.STREAM, {"x": "1"})
        await p.ensure_group()
        try:
            for r in range(rounds):
                burst = [Event(f"{r}-{i}", ev.QUEUED, f"ABC-{i % 900 + 100:03d}", f"b{r}-{i}", "queued",
                               1000.0 + i, {"status": "queued", "kind": "download"}) for i in range(2000)]
                cpu = time.process_time()
                for e in burst:
                    await p.apply([e])
                burst_us = (time.process_time() - cpu) / len(burst) * 1e6
                events = [e for i in range(r * 1000, (r + 1) * 1000) for e in lifecycle(i)]
                cpu = time.process_time()
                for i in range(0, len(events), 500):
                    await p.apply(events[i:i + 500])
                jobs_us = (time.process_time() - cpu) / len(events) * 1e6
                print(f"round {r + 1}: burst {burst_us:.0f} us of CPU per one-event batch; "
                      f"jobs {jobs_us:.1f} us per event ({jobs_us * 32:.0f} us per job)")
            await p.stop()
        finally:
            await client.aclose()
            index.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each shape (default 3)")
    asyncio.run(measure(ap.parse_args().rounds))


if __name__ == "__main__":
    main()
