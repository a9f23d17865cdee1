"""Benchmark the library list: 10,000 resources, filter + sort + search, p95 must stay under 20 ms.

    python -m tools.bench_library [--resources 10000] [--queries 500] [--http]

Writes a synthetic library (metadata JSON per AVID, half of them with a stand-in video) to a
temp dir, rebuilds the index from it (timed), then runs a mix of list queries, each with a
search, a filter and a sort, straight on the index and (``--http``) through
``GET /api/resources/`` on a real ``nassav serve`` with a private Redis, over one keep-alive
connection.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gateway.index import LibraryIndex, Query

_SYL = ("ka", "ri", "mo", "na", "shi", "to", "yu", "be", "lo", "den", "sa", "vi", "ro", "ha", "mi", "ku")
# 300 made-up title words: a word matches ~3 % of titles, as real title words do.
WORDS = tuple(dict.fromkeys(a + b + c for a in _SYL for b in _SYL for c in ("n", "ra", "to", "")))[:300]
PREFIXES = ("ABC", "DEF", "GHI", "JKL", "MNO", "PQR", "STU", "VWX", "XYZ", "TST")
GENRES = ("Drama", "Comedy", "Romance", "Documentary", "Mystery", "Sports", "Music", "Travel",
          "Cooking", "School", "Office", "Outdoor")
SOURCES = ("missav", "jable", "memo", "netflav", "hohoj")


def make_library(root: Path, n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    actors = actor_names()
    codes = []
    t0 = time.time() - n * 60
    for i in range(n):
        code = f"{PREFIXES[i % len(PREFIXES)]}-{i:05d}"
        codes.append(code)
        d = root / code
        d.mkdir(parents=True)
        created = t0 + i * 60
        title = " ".join(rnd.sample(WORDS, 4)).title()
        meta = {"avid": code, "schema": 1, "title": title, "original_title": title + " (original)",
                "source_title": f"{code} {title}", "release_date": f"20{rnd.randint(10, 24)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}",
                "genres": rnd.sample(GENRES, 3), "actors": [{"name": a, "avatar_url": ""} for a in rnd.sample(actors, 2)],
                "source": {"name": rnd.choice(SOURCES)}, "created_at": created,
                "updated_at": created + rnd.randint(0, 10_000),
                "user": {"watched": rnd.random() < 0.3, "is_favorite": rnd.random() < 0.1}}
        if i % 2 == 0:
            (d / f"{code}.mp4").write_bytes(b"\0")
            meta["video"] = {"file": f"{code}.mp4", "bytes": 1, "completed_at": created + 600}
        (d / f"{code}.json").write_text(json.dumps(meta), encoding="utf-8")
    return codes


def actor_names() -> list[str]:
    first = ("Aoi", "Mei", "Rin", "Yui", "Saki", "Hana", "Nao", "Emi", "Kana", "Miyu")
    last = ("Testa", "Samplo", "Fixtura", "Exemplo", "Demora", "Mockaya", "Stubbe", "Fakera")
    return [f"{f} {l}{i}" for i, (f, l) in enumerate((f, l) for f in first for l in last for _ in range(5))]


def queries(n: int, seed: int = 11, broad: bool = False) -> list[dict[str, str]]:
    """A mix of list requests; each has a search, at least one filter and a sort.

    The searches are what a user types: a title word, an actor's name, part of an AVID, two
    words. ``broad`` makes every search a two-letter fragment that matches most of the library.
    """
    rnd = random.Random(seed)
    actors = actor_names()
    out = []
    for i in range(n):
        q = {"search": rnd.choice(_SYL[:8]) if broad else
             rnd.choice([rnd.choice(WORDS), rnd.choice(PREFIXES).lower() + f"-0{rnd.randint(0, 9)}",
                         rnd.choice(actors).lower(), f"{rnd.choice(WORDS)} {rnd.choice(WORDS)}"]),
             "sort_by": rnd.choice(("avid", "metadata_create_time", "metadata_update_time", "video_create_time",
                                    "source")),
             "order": rnd.choice(("asc", "desc")), "page": str(rnd.randint(1, 3)), "page_size": "50"}
        f = i % 5
        if f == 0:
            q["status"] = "downloaded"
        elif f == 1:
            q["genre"] = rnd.choice(GENRES)
        elif f == 2:
            q["source"] = rnd.choice(SOURCES)
            q["watched"] = "false"
        elif f == 3:
            q["status"] = "pending"
            q["is_favorite"] = "false"
        else:
            q["genre"] = rnd.choice(GENRES)
            q["status"] = "downloaded"
        out.append(q)
    return out


def to_query(q: dict[str, str]) -> Query:
    b = {"true": True, "false": False}
    return Query(search=q.get("search", ""), status=q.get("status", "all"), watched=b.get(q.get("watched", "")),
                 is_favorite=b.get(q.get("is_favorite", "")), source=q.get("source", ""), genre=q.get("genre", ""),
                 sort_by=q["sort_by"], order=q["order"], page=int(q["page"]), page_size=int(q["page_size"]))


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def report(name: str, ms: list[float]) -> dict[str, float]:
    r = {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
         "p99_ms": round(pct(ms, 99), 2), "max_ms": round(max(ms), 2)}
    print(f"{name:<28} n={len(ms):<5} p50 {r['p50_ms']:6.2f} ms  p95 {r['p95_ms']:6.2f} ms  "
          f"p99 {r['p99_ms']:6.2f} ms  max {r['max_ms']:6.2f} ms")
    return r


def _wait_rebuilt(data_dir: Path, since: float, timeout_s: float = 120) -> None:
    """A fresh Redis has no consumer group yet, so the gateway rebuilds the index from disk
    when it starts: measure after that, not while it runs."""
    import sqlite3

    from gateway.index import FILENAME

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(data_dir / FILENAME, timeout=5) as c:
                row = c.execute("SELECT value FROM kv WHERE key = 'rebuilt_at'").fetchone()
            if row and float(row[0]) >= since:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise SystemExit("the gateway did not finish rebuilding the index")


def bench_http(data_dir: Path, qs: list[dict[str, str]]) -> list[float]:
    """The same queries through a real ``nassav serve`` (uvicorn) over one keep-alive connection."""
    import http.client
    import os
    import signal
    import socket
    import subprocess
    import urllib.parse

    from pipeline.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(data_dir.parent / "redis")
    url = server.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started_at = time.time()
    env = {**os.environ, "NASSAV_REDIS_URL": url}
    env.pop("NASSAV_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                             "--data-dir", str(data_dir)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        conn = None
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/health")
                conn.getresponse().read()
                break
            except OSError:
                conn = None
                time.sleep(0.2)
        if conn is None:
            raise SystemExit("nassav serve did not start")
        _wait_rebuilt(data_dir, started_at)

        def get(q: dict[str, str]) -> None:
            conn.request("GET", "/api/resources/?" + urllib.parse.urlencode(q))
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, body[:300]

        for q in qs[:20]:
            get(q)
        ms = []
        for q in qs:
            t = time.perf_counter()
            get(q)
            ms.append((time.perf_counter() - t) * 1000)
        conn.close()
        return ms
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            print("nassav serve did not stop within 30 s of SIGTERM; killed", file=sys.stderr)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resources", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--http", action="store_true",
                    help="also through GET /api/resources/ on a real `nassav serve` (starts a private Redis)")
    ap.add_argument("--budget-ms", type=float, default=20.0, help="p95 that passes (default 20)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nassav-bench-") as tmp:
        data = Path(tmp) / "data"
        t = time.perf_counter()
        make_library(data, args.resources)
        print(f"library: {args.resources} resources written in {time.perf_counter() - t:.1f} s")
        index = LibraryIndex(data)
        t = time.perf_counter()
        n = index.rebuild()
        print(f"index:   rebuilt from disk in {time.perf_counter() - t:.1f} s ({n} rows)")
        qs = queries(args.queries)
        for q in qs[:20]:
            index.list(to_query(q))
        ms, hits = [], []
        for q in qs:
            t = time.perf_counter()
            items, total = index.list(to_query(q))
            ms.append((time.perf_counter() - t) * 1000)
            hits.append(total)
        print(f"queries: search + filter + sort, page_size 50; median matches {statistics.median(hits):.0f}")
        worst = report("index.list", ms)["p95_ms"]
        broad = []
        for q in queries(max(50, args.queries // 5), broad=True):
            t = time.perf_counter()
            index.list(to_query(q))
            broad.append((time.perf_counter() - t) * 1000)
        report("index.list, broad search", broad)
        index.close()
        if args.http:
            worst = max(worst, report("GET /api/resources/", bench_http(data, qs))["p95_ms"])
    ok = worst < args.budget_ms
    print(f"{'PASS' if ok else 'FAIL'}: p95 {worst:.2f} ms (budget {args.budget_ms:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
