"""The "load and hostile input" attacks against the gateway of any checkout, for before/after
figures (not a test: it asserts nothing, it prints what each attack got as JSON).

    git archive 9baddde | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    (cd /tmp/base && /path/to/.venv/bin/python /path/to/tests/security/attack_load.py /tmp/base)
    .venv/bin/python tests/security/attack_load.py .          # this checkout

Each attack runs on the checkout's own ``tests/live_server.live_gateway`` with an embedded Redis.
"""
import asyncio, importlib.util, json, logging, sys, tempfile, time, pathlib
from collections import Counter
root = sys.argv[1]
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("raw_http", pathlib.Path(__file__).with_name("raw_http.py"))
raw = importlib.util.module_from_spec(spec); sys.modules["raw_http"] = raw; spec.loader.exec_module(raw)
from pipeline.embedded_redis import EmbeddedRedis
from tests.live_server import live_gateway
from tests.api_helpers import put_resource, settle
import redis as syncredis
from websockets.sync.client import connect

class Tracebacks(logging.Handler):
    def __init__(self): super().__init__(); self.n = 0; self.first = ""
    def emit(self, rec):
        if rec.exc_info:
            self.n += 1; self.first = self.first or f"{rec.name}: {rec.getMessage()} {rec.exc_info[0].__name__}"
tb = Tracebacks()


def watch_logs():
    """Count records with a traceback from uvicorn (attached after the server configured logging)."""
    for name in ("uvicorn.error", ""):
        lg = logging.getLogger(name)
        if tb not in lg.handlers:
            lg.addHandler(tb)
    logging.getLogger("uvicorn.error").propagate = False  # counted once

tmp = pathlib.Path(tempfile.mkdtemp())
srv = EmbeddedRedis(tmp / "redis"); srv.start()
r = syncredis.Redis.from_url(srv.url)
def clean(): r.flushall()
out = {}
try:
    for case, paths in (("distinct", [f"/api/downloads/LOAD-{i+1:04d}" for i in range(500)]),
                        ("same", ["/api/downloads/SAME-001"] * 500)):
        clean()
        with live_gateway(tmp / f"d-{case}", srv.url) as gw:
            ans, wall = asyncio.run(raw.burst(gw.port, [raw.request_bytes("POST", p, gw.port) for p in paths]))
            settle(gw)
        out[f"500 submits {case}"] = {**Counter(a.status for a in ans), "wall_s": round(wall, 2)}
    clean(); tb.n = 0
    with live_gateway(tmp / "d-json", srv.url) as gw:
        watch_logs()
        a = asyncio.run(raw.send(gw.port, raw.request_bytes("POST", "/api/resource", gw.port, b"[" * 100_000)))
        out["HTTP 100k ["] = {"status": a.status, "body": a.body[:80].decode(errors="replace"), "tracebacks_logged": tb.n}
        tb.n = 0
        res = {}
        try:
            with connect(gw.ws + "/ws/tasks/", max_size=None) as ws:
                ws.recv(timeout=5)
                ws.send("[" * 100_000)
                try: res["reply"] = ws.recv(timeout=5)[:100]
                except Exception as e: res["reply"] = f"{type(e).__name__}: {e}"[:100]
        except Exception as e: res["error"] = repr(e)[:100]
        res["tracebacks_logged"] = tb.n
        out["WS 100k ["] = res
        res = {}
        try:
            with connect(gw.ws + "/ws/tasks/", max_size=None) as ws:
                ws.recv(timeout=5)
                ws.send(" " * ((1 << 20) + 1))
                try: res["reply"] = ws.recv(timeout=5)[:100]
                except Exception as e: res["reply"] = f"{type(e).__name__}: {e}"[:100]
        except Exception as e: res["error"] = repr(e)[:100]
        out["WS 1 MiB + 1"] = res
    clean()
    with live_gateway(tmp / "d-slow", srv.url) as gw:
        head = raw.request_bytes("GET", "/health", gw.port)
        async def slow():
            tasks = [asyncio.create_task(raw.trickle(gw.port, head, every_s=1.5, max_bytes=12)) for _ in range(50)]
            lat = []
            while not all(t.done() for t in tasks):
                t0 = time.monotonic(); a = await raw.send(gw.port, head, timeout_s=10)
                lat.append((a.status, time.monotonic() - t0)); await asyncio.sleep(0.25)
            return [t.result() for t in tasks], lat
        res, lat = asyncio.run(slow())
        closed = [c for c, _ in res if c is not None]
        out["50 slow sockets (1 byte/1.5 s, 12 bytes)"] = {
            "still_open_after_18s": sum(1 for c, _ in res if c is None),
            "closed_after_s_max": round(max(closed), 1) if closed else None,
            "answers": dict(Counter(b[:12].decode(errors="replace") for c, b in res if c is not None)),
            "health": dict(Counter(s for s, _ in lat)), "health_max_s": round(max(t for _, t in lat), 3)}
    clean()
    data = tmp / "d-del"
    with live_gateway(data, srv.url) as gw:
        watch_logs(); tb.n = 0
        outcomes = Counter()
        for i in range(40):
            code = f"RACE-{i+1:03d}"
            put_resource(data, code, video=True)
            ans, _ = asyncio.run(raw.burst(gw.port, [raw.request_bytes("DELETE", f"/api/resource/{code}", gw.port)] * 2))
            outcomes[tuple(sorted(a.status for a in ans))] += 1
        out["2 concurrent DELETEs x40"] = {**{"/".join(map(str, k)): v for k, v in outcomes.items()},
                                           "tracebacks_logged": tb.n}
        put_resource(data, "ABC-123", video=True)
        a = asyncio.run(raw.send(gw.port, raw.request_bytes("DELETE", "/api/resource/ABC-123-C", gw.port)))
        out["DELETE ABC-123-C with ABC-123 in the library"] = {"status": a.status, "message": a.json()["message"],
                                                               "ABC-123 still there": (data / "ABC-123").exists()}
        settle(gw)
finally:
    r.close(); srv.stop()
print(json.dumps(out, indent=1))
