"""What decoding Redis replies in the client costs on the gateway's two hot paths.

    python -m tools.bench_redis_decode [--rounds 40] [--submits 2000]

The product's clients decode replies (``pipeline/redis_client.py``). Before, they answered
bytes and each reader converted what it used (``v.decode() if isinstance(v, bytes) else v``).
This measures, on a private embedded Redis, the CPU time of (a) reading 1,000 events with
XRANGE and making ``Event`` objects, as the relay and the projection do, both ways, and (b) one
``AsyncJobs.submit`` (the ingest route's Redis work) on a decoding and on a bytes client. A
difference here would justify a separately named bytes client for that path; there is none.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from pipeline import events as ev
from pipeline.embedded_redis import EmbeddedRedis
from pipeline.jobs import AsyncJobs
from pipeline.redis_client import DECODED, connect


def _converted(entry_id: Any, fields: dict) -> ev.Event:
    """The readers' old per-field conversion, for a bytes client."""
    def s(v: Any) -> Any:
        return v.decode() if isinstance(v, bytes) else v
    return ev.Event.from_entry(s(entry_id), {s(k): s(v) for k, v in fields.items()})


async def measure(url: str, rounds: int, submits: int) -> dict[str, float]:
    with connect(url) as c:
        c.flushall()
        pipe = c.pipeline(transaction=False)
        for i in range(1000):
            pipe.xadd(ev.STREAM, ev.encode(ev.PROGRESS, avid="DEMO-001", job_id=f"j{i}",
                                           data={"percent": i / 10, "speed": "1.0 MB/s"}))
        pipe.execute()
    raw, dec = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url, **DECODED)
    out: dict[str, float] = {}
    try:
        for name, client, make in (("read_bytes_converted_ms", raw, _converted),
                                   ("read_decoded_ms", dec, ev.Event.from_entry)):
            cpu = []
            for _ in range(rounds):
                t = time.process_time()
                [make(i, f) for i, f in await client.xrange(ev.STREAM, count=1000)]
                cpu.append(time.process_time() - t)
            out[name] = statistics.median(cpu) * 1000
        for name, client in (("submit_bytes_us", raw), ("submit_decoded_us", dec)):
            await client.flushall()
            jobs = AsyncJobs(client)
            t = time.process_time()
            for i in range(submits):
                await jobs.submit(f"DEC-{i:05d}")
            out[name] = (time.process_time() - t) / submits * 1e6
    finally:
        await raw.aclose()
        await dec.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=40, help="reads of 1,000 events per way")
    ap.add_argument("--submits", type=int, default=2000, help="submits per way")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, EmbeddedRedis(Path(d) / "redis") as server:
        out = asyncio.run(measure(server.url, args.rounds, args.submits))
    print(f"XRANGE 1,000 events → Event, CPU ms (median of {args.rounds}): "
          f"bytes + conversion {out['read_bytes_converted_ms']:.1f}, decoded {out['read_decoded_ms']:.1f}")
    print(f"AsyncJobs.submit, CPU µs a call ({args.submits}): "
          f"bytes client {out['submit_bytes_us']:.0f}, decoding client {out['submit_decoded_us']:.0f}")


if __name__ == "__main__":
    main()
