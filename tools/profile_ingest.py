"""Profile ``POST /api/downloads/{avid}`` inside the gateway process, without HTTP or a load generator.

Starts an embedded Redis in a temp dir, builds the real gateway app (``gateway.app.create_app``)
and the bench's minimal route (``tools/bench_pipeline.py::minimal_app``), runs each lifespan,
and calls each app's ASGI entry directly, N times, for a duplicate submit (or distinct AVIDs).
Prints the CPU µs a request of both (median of rounds, alternating) and, with ``--profile``,
cProfile's top lines for the real gateway. Everything started is stopped on exit.

    .venv/bin/python -m tools.profile_ingest --mode dupes --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.embedded_redis import EmbeddedRedis
from pipeline.redis_client import connect


def _scope(avid: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": f"/api/downloads/{avid}",
            "raw_path": f"/api/downloads/{avid}".encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:16377"), (b"content-length", b"0")],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 16377), "state": {}}


async def _call(app: Any, avid: str) -> int:
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(avid), receive, send)
    return status


@contextlib.asynccontextmanager
async def _lifespan(app: Any):
    """Run the app's ASGI lifespan (what uvicorn does around serving)."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                     inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    msg = await outbox.get()
    if msg["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"lifespan startup failed: {msg}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def _round(app: Any, avids: list[str], expect: int) -> float:
    """CPU µs a request over ``avids``."""
    t0 = time.process_time()
    for a in avids:
        got = await _call(app, a)
        if got != expect:
            raise RuntimeError(f"{a}: expected {expect}, got {got}")
    return 1e6 * (time.process_time() - t0) / len(avids)


async def run(args: argparse.Namespace, work: Path) -> None:
    import yaml

    from gateway.app import create_app
    from pipeline.config import load as load_config
    from tools.bench_pipeline import minimal_app

    server = EmbeddedRedis(work / "redis")
    url = server.start()
    try:
        cfg_path = work / "nassav.yaml"
        cfg_path.write_text(yaml.safe_dump({"data_dir": str(work / "data"), "redis_url": url}))
        real = create_app(load_config(cfg_path, environ={}), url)
        apps = {"real gateway": real, "minimal route": minimal_app(url)}
        client = connect(url)
        seq = iter(range(10**9))
        expect = 409 if args.mode == "dupes" else 202

        def batch() -> list[str]:
            if args.mode == "dupes":
                return [f"DUPE-{i % 64 + 1}" for i in range(args.requests)]
            return [f"DIST{next(seq)}-{i + 1}" for i in range(args.requests)]

        async with _lifespan(apps["real gateway"]), _lifespan(apps["minimal route"]):
            results: dict[str, list[float]] = {k: [] for k in apps}
            for rnd in range(args.rounds + 1):  # round 0 warms up
                order = list(apps) if rnd % 2 == 0 else list(apps)[::-1]
                for name in order:
                    client.flushdb()
                    if args.mode == "dupes":  # claims held by jobs, as in the bench's dupes mode
                        for i in range(64):
                            await _call(apps[name], f"DUPE-{i + 1}")
                    us = await _round(apps[name], batch(), expect)
                    if rnd:
                        results[name].append(us)
            for name, values in results.items():
                print(f"{name:14s} {args.mode}: {statistics.median(values):6.0f} µs CPU a request "
                      f"(median of {len(values)}: {', '.join(f'{v:.0f}' for v in values)})")
            if args.profile:
                client.flushdb()
                for i in range(64):
                    await _call(real, f"DUPE-{i + 1}")
                prof = cProfile.Profile()
                avids = batch()
                prof.enable()
                for a in avids:
                    await _call(real, a)
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
                print(out.getvalue())
        client.flushdb()
        client.close()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/profile_ingest.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("dupes", "distinct"), default="dupes")
    p.add_argument("--requests", type=int, default=3000, help="requests a round (default 3000)")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds per app, alternating (default 5)")
    p.add_argument("--profile", action="store_true", help="then cProfile the real gateway")
    p.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nassav-prof-"))
    try:
        asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
