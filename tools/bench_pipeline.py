"""Throughput benchmark of nassav's ingest and of its metadata pipeline (not a timed test).

(a) ingest: ``POST /api/downloads/{avid}`` with 50 keep-alive connections (wrk from Debian,
    or a Python load generator when wrk is missing), distinct AVIDs and duplicates, against
    the real gateway (``nassav serve``) and against a minimal Starlette route on the same
    Redis and the same uvicorn settings that only validates, claims (SET NX), appends an event
    (XADD) and enqueues a Dramatiq message. No workers run; Redis is flushed between runs.
(b) pipeline: AVIDs of kind "metadata" (resolve → scrape → cover, no download) through the
    real actors in ``nassav worker --queues metadata`` processes (1, then 2), the fixture
    site answering at once. A burst of N AVIDs gives AVIDs/s; a paced run at a fraction of
    that rate gives the per-hop latency at steady load. Then 40 probes, one AVID at a time
    after the workers sat idle for 3 s, give the first pickup on an idle queue (queued →
    resolve started). Hops and stage times come from the ``ts`` of the events on
    ``nassav:events``.

Everything runs on 127.0.0.1 with free ports, in a temp dir, on a private Redis that this
script starts and stops; every child runs in its own process group and is stopped on exit.

    .venv/bin/python tools/bench_pipeline.py                  # all of it: 5-6 min on 2 cores
    .venv/bin/python tools/bench_pipeline.py --tmpfs-variant  # + a run with the data dir on tmpfs
    .venv/bin/python tools/bench_pipeline.py --only ingest --loadgen python
    .venv/bin/python tools/bench_pipeline.py --only pipeline --avids 500 --workers 2

Most of the time is the 2 x 2,000 AVIDs through the pipeline (each run gives up after
--timeout). Every figure comes with the CPU that other processes on the machine used
meanwhile: on a shared 2-core machine, rates move with the neighbours; CPU per request and
per AVID much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure this checkout, not whatever is installed

import redis  # noqa: E402

from pipeline.embedded_redis import EmbeddedRedis, die_with_parent  # noqa: E402
from pipeline.worker_registry import WORKERS_KEY  # noqa: E402

STREAM = "nassav:events"
CLAIM_PREFIX = "nassav:claim:"
HOPS = (("queued", "resolve"), ("resolve", "scrape"), ("scrape", "cover"))
STAGES = ("resolve", "scrape", "cover")
TERMINAL = ("task_completed", "task_failed")
# Issue 13's latency targets, judged in the table.
PICKUP_P99_TARGET_MS = 100.0
HOP_P99_TARGET_MS = 50.0
DUPLICATE_SET = 64  # duplicates mode cycles over this many AVIDs: all but the first posts are 409
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes ---------------------------------------------------------------------------

# Run a module of this checkout: the editable install's finder would otherwise fill in modules
# this checkout lacks from wherever the install points (someone's work in progress).
_BOOT = ("import runpy, sys; "
         "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__name__', '').startswith('_Editable')]; "
         "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _BOOT, module, *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Group:
    """A child in its own session (so its whole process group can be stopped), logging to a file."""

    def __init__(self, name: str, argv: list[str], log_path: Path):
        self.name = name
        self.log_path = log_path
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for k in ("REDIS_URL", "NASSAV_REDIS_URL", "NASSAV_DATA_DIR", "NASSAV_PORT", "NASSAV_HOST"):
            env.pop(k, None)  # only the config file this script writes counts
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                               f"last lines of {self.log_path}:\n{tail(self.log_path)}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the group, SIGKILL to whatever is left after ``timeout_s``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(10)


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (threads included) and of its live
    descendants (``nassav serve --processes N``'s gateway processes)."""
    stats: dict[int, list[str]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stats[int(d.name)] = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    if pid not in stats:
        return 0.0
    kids: dict[int, list[int]] = {}
    for p, fields in stats.items():
        kids.setdefault(int(fields[1]), []).append(p)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += int(stats[p][11]) + int(stats[p][12])
        todo += kids.get(p, [])
    return total / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """CPU used during a ``with`` block by named processes, by this process (``bench``), by
    children reaped meanwhile (``children``: wrk) and by everything else on the machine
    (``foreign``: other people's jobs; the figures are only as good as this is small)."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.cpu: dict[str, float] = {}
        self.wall_s = 0.0
        self.foreign_s = 0.0

    def __enter__(self) -> "CpuMeter":
        self._t0, self._m0 = time.monotonic(), machine_busy_s()
        self._p0 = {k: cpu_s(p) for k, p in self.pids.items()}
        self._s0 = time.process_time()
        self._c0 = _children_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = max(1e-6, time.monotonic() - self._t0)
        self.cpu = {k: max(0.0, cpu_s(p) - self._p0[k]) for k, p in self.pids.items()}
        self.cpu["bench"] = time.process_time() - self._s0
        self.cpu["children"] = _children_cpu_s() - self._c0
        self.foreign_s = max(0.0, machine_busy_s() - self._m0 - sum(self.cpu.values()))

    def pct(self, key: str) -> float:
        """Per cent of one core."""
        return 100 * self.cpu.get(key, 0.0) / self.wall_s if self.wall_s else 0.0

    @property
    def foreign_pct(self) -> float:
        return 100 * self.foreign_s / self.wall_s if self.wall_s else 0.0


def _children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wait_until(what: str, probe, timeout_s: float, every_s: float = 0.1, check=None):
    deadline = time.monotonic() + timeout_s
    while True:
        if check:
            check()
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def with_db(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (unix-socket URLs take it as a query)."""
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={db}"
    base = url.split("?")[0].rstrip("/")
    if base.count("/") > 2:  # redis://host:port/N
        base = base.rsplit("/", 1)[0]
    return f"{base}/{db}"


def health_pid(url: str) -> int | None:
    """The pid of the gateway process that answered ``/health`` (a new connection each call)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())["data"]["gateway"]["pid"]
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
        return None


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (+ uncommitted changes)" if dirty else "")


# -- (a) the minimal route ---------------------------------------------------------------

_MIN_AVID = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*-\d+[A-Z]?$")


def minimal_app(redis_url: str):
    """Validate, claim (SET NX), append the ``queued`` event (XADD), enqueue ``resolve``.

    The same Redis, the same Dramatiq broker set-up and queue as the gateway; the enqueue is
    the broker's plain synchronous call made on the event loop (one local round trip): the
    least a route can do.
    """
    import dramatiq
    import redis.asyncio as aioredis
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from pipeline.broker import METADATA_QUEUE, make_broker
    from pipeline.config import WorkerConfig

    st: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        st["redis"] = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        broker = make_broker(redis_url, WorkerConfig())
        st["resolve"] = dramatiq.actor(lambda avid, job_id: None, broker=broker, actor_name="resolve",
                                       queue_name=METADATA_QUEUE)
        try:
            yield
        finally:
            await st["redis"].aclose()
            broker.close()

    async def submit(request):
        code = request.path_params["avid"].strip().upper()
        if len(code) > 30 or not _MIN_AVID.match(code):
            return JSONResponse({"code": 400, "message": "invalid AVID", "data": None}, status_code=400)
        job_id = uuid.uuid4().hex
        r = st["redis"]
        if not await r.set(CLAIM_PREFIX + code, job_id, nx=True):
            return JSONResponse({"code": 409, "message": f"{code} already has a job",
                                 "data": {"avid": code, "status": "exists"}}, status_code=409)
        now = time.time()
        await r.xadd(STREAM, {"type": "queued", "avid": code, "job_id": job_id, "stage": "queued",
                              "ts": f"{now:.6f}", "data": '{"status":"queued","kind":"download"}'},
                     maxlen=100_000, approximate=True)
        st["resolve"].send(code, job_id)
        return JSONResponse({"code": 202, "message": f"{code} queued",
                             "data": {"avid": code, "job_id": job_id, "status": "queued"}},
                            status_code=202)

    async def health(request):
        return JSONResponse({"code": 200, "message": "ok", "data": None})

    return Starlette(routes=[Route("/api/downloads/{avid}", submit, methods=["POST"]),
                             Route("/health", health, methods=["GET"])], lifespan=lifespan)


def serve_minimal(port: int, redis_url: str) -> int:
    """The same uvicorn settings as ``gateway/serve.py`` (uvloop, httptools, one process)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        minimal_app(redis_url), host="127.0.0.1", port=port, log_config=None, access_log=False,
        loop="uvloop", http="httptools", ws="websockets-sansio", lifespan="on",
        timeout_graceful_shutdown=5))
    server.run()
    return 0


# -- (a) load generators -----------------------------------------------------------------

WRK_LUA = r"""
-- distinct: every request a new AVID (B<run>T<thread>-<n>); dupes: cycles over DUPE-1..DUPE-%(dupes)d
local mode = "%(mode)s"
local tag = "%(tag)d"
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  s202, s409, sother = 0, 0, 0
end
function request()
  counter = counter + 1
  local avid
  if mode == "distinct" then
    avid = "B" .. tag .. "T" .. tid .. "-" .. counter
  else
    avid = "DUPE-" .. (counter %% %(dupes)d + 1)
  end
  return wrk.format("POST", "/api/downloads/" .. avid, nil, "")
end
function response(status, headers, body)
  if status == 202 then s202 = s202 + 1 elseif status == 409 then s409 = s409 + 1 else sother = sother + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s202"); b = b + t:get("s409"); c = c + t:get("sother") end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_s":%%.6f,"p50_ms":%%.3f,"p99_ms":%%.3f,"mean_ms":%%.3f,' ..
    '"max_ms":%%.3f,"s202":%%d,"s409":%%d,"other":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.mean / 1e3, latency.max / 1e3, a, b, c,
    e.connect + e.read + e.write + e.timeout))
end
"""


def have_wrk(install: bool) -> bool:
    if shutil.which("wrk"):
        return True
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("wrk missing: apt-get install -y wrk", flush=True)
    res = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True)
    if res.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
    return bool(shutil.which("wrk"))


def run_wrk(url: str, mode: str, *, tag: int, connections: int, duration_s: float, threads: int,
            workdir: Path) -> dict[str, Any]:
    script = workdir / f"bench-{mode}-{tag}.lua"
    script.write_text(WRK_LUA % {"mode": mode, "dupes": DUPLICATE_SET, "tag": tag})
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s",
            "--timeout", "5s", "-s", str(script), url]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60)
    for line in res.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"wrk gave no result (rc {res.returncode}):\n{res.stdout}\n{res.stderr}")


async def _pyload(host: str, port: int, mode: str, tag: int, connections: int,
                  duration_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    n = itertools.count(1)
    t_end = loop.time() + duration_s

    async def one(cid: int) -> None:
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            return
        try:
            while loop.time() < t_end:
                i = next(n)
                avid = f"P{tag}C{cid}-{i}" if mode == "distinct" else f"DUPE-{i % DUPLICATE_SET + 1}"
                t0 = time.perf_counter()
                writer.write(f"POST /api/downloads/{avid} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                             "Content-Length: 0\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                lat.append(time.perf_counter() - t0)
                statuses[int(head[9:12])] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(connections)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(lat), "duration_s": elapsed, "p50_ms": pct(lat, 50) * 1e3,
            "p99_ms": pct(lat, 99) * 1e3, "mean_ms": (sum(lat) / len(lat) * 1e3) if lat else 0.0,
            "max_ms": (lat[-1] * 1e3) if lat else 0.0, "s202": statuses[202], "s409": statuses[409],
            "other": sum(v for k, v in statuses.items() if k not in (202, 409)),
            "socket_errors": errors}


def run_pyload(host: str, port: int, mode: str, *, tag: int, connections: int,
               duration_s: float) -> dict[str, Any]:
    coro = _pyload(host, port, mode, tag, connections, duration_s)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# -- statistics --------------------------------------------------------------------------

def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def p50_p99_ms(values: Iterable[float]) -> tuple[float, float, int]:
    v = sorted(values)
    return pct(v, 50) * 1e3, pct(v, 99) * 1e3, len(v)


# -- (a) ingest --------------------------------------------------------------------------

@dataclass
class IngestRun:
    """One measured load-generator run against one target."""

    target: str
    mode: str
    rps: float
    p50_ms: float
    p99_ms: float
    s202: int
    s409: int
    other: int
    socket_errors: int
    requests: int
    cpu: "CpuMeter"

    @property
    def server_ms_per_request(self) -> float:
        return 1e3 * self.cpu.cpu.get("server", 0.0) / max(1, self.requests)


def bench_ingest(args: argparse.Namespace, work: Path, redis_url: str, redis_pid: int,
                 stack: contextlib.ExitStack) -> tuple[list[IngestRun], str]:
    """Both servers up at once; rounds alternate real/minimal so background load hits both."""
    import yaml

    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and have_wrk(install=True))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install -y wrk)")
    loadgen = (f"wrk {wrk_version()} (-t{args.wrk_threads})" if use_wrk
               else "a Python asyncio load generator (" + ("--loadgen python)" if args.loadgen == "python"
                                                             else "wrk not available)"))
    # Each target gets its own Redis database and data dir: an idle gateway would otherwise
    # project the events another target's requests append (a third of a core on 2 cores).
    targets = ["real gateway", "minimal route"] + [f"real gateway x{n}" for n in args.processes]
    if args.skip_minimal:
        targets.remove("minimal route")
    urls = {t: with_db(redis_url, i + 1) for i, t in enumerate(targets)}
    clients = {t: stack.enter_context(contextlib.closing(redis.Redis.from_url(u))) for t, u in urls.items()}

    def config_for(target: str) -> str:
        data_dir = work / f"ingest-data-{target.replace(' ', '-')}"
        data_dir.mkdir()
        cfg = work / f"ingest-{target.replace(' ', '-')}.yaml"
        cfg.write_text(yaml.safe_dump({"data_dir": str(data_dir), "redis_url": urls[target]}))
        return str(cfg)

    argv = {}
    for target in targets:
        if target == "minimal route":
            argv[target] = lambda port: [sys.executable, str(Path(__file__).resolve()), "--serve-minimal",
                                         str(port), "--redis-url", urls["minimal route"]]
        else:
            more = ["--processes", target.rpartition("x")[2]] if target.startswith("real gateway x") else []
            argv[target] = (lambda cfg, more: lambda port: module_argv(
                "gateway.cli", "serve", "--config", cfg, "--port", str(port), *more))(config_for(target), more)
    servers: dict[str, tuple[Group, int]] = {}
    for target, make in argv.items():
        port = free_port()
        g = Group(target, make(port), work / f"ingest-{target.replace(' ', '-')}.log")
        stack.callback(g.stop)
        servers[target] = (g, port)
    for target, (g, port) in servers.items():
        wait_until(f"{target} on port {port}", lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                   30, check=g.check)
        if not target.startswith("real gateway x"):
            continue  # one process: /health answered, nothing more to wait for
        n = int(target.rpartition("x")[2])
        pids: set[int] = set()  # every process of a multi-process gateway up before measuring
        wait_until(f"{n} processes of {target}", lambda: pids.add(health_pid(f"http://127.0.0.1:{port}/health"))
                   or len(pids - {None}) >= n, 30, 0.02, check=g.check)

    tags = itertools.count(1)

    def one(target: str, mode: str, duration_s: float) -> IngestRun:
        g, port = servers[target]
        clients[target].flushdb()
        with CpuMeter({"server": g.pid, "redis": redis_pid}) as meter:
            if use_wrk:
                res = run_wrk(f"http://127.0.0.1:{port}", mode, tag=next(tags),
                              connections=args.connections, duration_s=duration_s,
                              threads=args.wrk_threads, workdir=work)
            else:
                res = run_pyload("127.0.0.1", port, mode, tag=next(tags),
                                 connections=args.connections, duration_s=duration_s)
        g.check()
        time.sleep(0.3)  # let the last in-flight requests land before the next flush
        span = res["duration_s"] or duration_s
        return IngestRun(target, mode, res["requests"] / span, res["p50_ms"], res["p99_ms"], res["s202"],
                         res["s409"], res["other"], res["socket_errors"], res["requests"], meter)

    for target in servers:
        one(target, "distinct", min(2.0, args.duration))  # warm-up, not reported
    runs: list[IngestRun] = []
    for mode in args.modes:
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(servers)[::-1]
            for target in order:
                r = one(target, mode, args.duration)
                runs.append(r)
                print(f"  ingest {target:13s} {mode:8s} round {rnd + 1}: {r.rps:7.0f} req/s  "
                      f"p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  202={r.s202} 409={r.s409} "
                      f"other={r.other} socket errors={r.socket_errors}  CPU: server "
                      f"{r.cpu.pct('server'):.0f} % ({r.server_ms_per_request:.2f} ms a request), redis {r.cpu.pct('redis'):.0f} %, load generator "
                      f"{r.cpu.pct('children') + r.cpu.pct('bench'):.0f} %, other processes "
                      f"{r.cpu.foreign_pct:.0f} %", flush=True)
    for c in clients.values():
        c.flushdb()
    return runs, loadgen


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    m = re.search(r"wrk\s+(\S+)", out)
    return m.group(1) if m else "?"


# -- (b) pipeline ------------------------------------------------------------------------

def fast_fixture(titles: list[str]):
    """The fixture site, set up so that pages answer at once for thousands of titles.

    Three things of the stock fixture would be measured instead of nassav: its handler
    leaves Nagle on and writes headers and body apart, so a keep-alive request waits for
    the client's delayed ACK (~45 ms here; TCP_NODELAY below: ~2 ms); the per-AVID scenario
    lookup runs every title's regexes on every request (~0.5 s a request at 2,000 titles;
    the bench sets no per-AVID scenario, so it is skipped while none is set); and each new
    cover is drawn with Pillow (~4 ms, cached for 256 titles only; here a pool of 8 drawn
    covers serves every AVID). All three changes live in this process only.
    """
    import zlib

    from tools.fixture_site import FixtureSite, images
    from tools.fixture_site.server import FixtureHTTPServer, FixtureState, Handler

    class InstantHandler(Handler):
        disable_nagle_algorithm = True

    class InstantState(FixtureState):
        def avid_in(self, text: str) -> str | None:
            with self.lock:
                per_avid = any(":" in k for k in self.scenario)
            return super().avid_in(text) if per_avid else None

    pool = [images.cover_jpeg(f"POOL-{i}") for i in range(8)]
    original = images.cover_jpeg
    images.cover_jpeg = lambda avid: pool[zlib.crc32(avid.encode()) % len(pool)]
    state = InstantState()
    server = FixtureHTTPServer(("127.0.0.1", 0), state)
    server.RequestHandlerClass = InstantHandler
    for a in titles:
        state.add_title(a)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="fixture-site", daemon=True)
    thread.start()
    site = FixtureSite(server, thread)

    def stop() -> None:
        site.stop()
        images.cover_jpeg = original
    return site, stop


@dataclass
class PipelineRun:
    label: str
    workers: int
    submitted: int
    completed: int = 0
    failed: int = 0
    wall_s: float = 0.0
    avids_per_s: float = 0.0
    rate: float = 0.0  # the pace of a steady run (AVIDs/s submitted)
    hops: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    stages: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    e2e: tuple[float, float, int] = (0.0, 0.0, 0)
    per_worker: dict[str, int] = field(default_factory=dict)
    cpu: CpuMeter | None = None
    failures: list[str] = field(default_factory=list)
    timed_out: bool = False
    steady: "PipelineRun | None" = None
    # Idle-queue probes: one AVID at a time, each after the workers sat idle (queued → resolve).
    pickup: tuple[float, float, int] = (0.0, 0.0, 0)
    pickup_gap_s: float = 0.0
    files_per_avid: float = 0.0
    kb_per_avid: float = 0.0


class Submitter:
    """What the gateway does on a submit, from this process: ``Jobs.submit`` + send ``resolve``."""

    def __init__(self, redis_url: str, config):
        from actors.registry import declare
        from pipeline.broker import make_broker
        from pipeline.jobs import Jobs
        from pipeline.redis_client import connect

        self.client = connect(redis_url)
        self.jobs = Jobs(self.client, maxlen=config.events_maxlen)
        self.broker = make_broker(redis_url, config.workers)
        self.actors = declare(self.broker, config)

    def submit(self, avid: str) -> str:
        res = self.jobs.submit(avid, kind="metadata")
        if not res.accepted:
            raise RuntimeError(f"{avid} was already claimed by job {res.job_id}")
        self.actors.send("resolve", avid, res.job_id)
        return res.job_id

    def close(self) -> None:
        self.broker.close()
        self.client.close()


def read_events(client: redis.Redis, job_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per job: queued ts, stage start/finish ts, terminal type and ts, worker per stage."""
    from pipeline.events import Event

    jobs: dict[str, dict[str, Any]] = {j: {"started": {}, "finished": {}, "workers": {}} for j in job_ids}
    low = "-"
    while True:
        rows = client.xrange(STREAM, min=low, max="+", count=5000)
        if not rows:
            break
        for entry_id, fields in rows:
            e = Event.from_entry(entry_id, fields)
            j = jobs.get(e.job_id)
            if j is None:
                continue
            if e.type == "queued":
                j["queued"] = e.ts
            elif e.type == "stage_started":
                j["started"].setdefault(e.stage, e.ts)
                j["workers"][e.stage] = str(e.data.get("worker", ""))
            elif e.type == "stage_finished":
                j["finished"][e.stage] = e.ts
            elif e.type in TERMINAL:
                j["end"], j["end_type"] = e.ts, e.type
                j["message"] = str(e.data.get("message", ""))
        low = "(" + Event.from_entry(rows[-1][0], {}).id
    return jobs


def wait_terminal(client: redis.Redis, job_ids: set[str], timeout_s: float, check) -> bool:
    """Follow the stream until every job in ``job_ids`` has a terminal event."""
    left = set(job_ids)
    last = "0-0"
    deadline = time.monotonic() + timeout_s
    while left:
        check()
        if time.monotonic() > deadline:
            return False
        for _, rows in client.xread({STREAM: last}, block=500, count=5000) or []:
            for entry_id, fields in rows:
                last = entry_id
                if fields.get("type") in TERMINAL:
                    left.discard(fields.get("job_id", ""))
    return True


def analyse(run: PipelineRun, jobs: dict[str, dict[str, Any]]) -> None:
    ends = [j for j in jobs.values() if "end" in j]
    run.completed = sum(1 for j in ends if j["end_type"] == "task_completed")
    run.failed = sum(1 for j in ends if j["end_type"] == "task_failed")
    run.failures = sorted({j.get("message", "")[:160] for j in ends if j["end_type"] == "task_failed"})[:5]
    queued = [j["queued"] for j in jobs.values() if "queued" in j]
    if ends and queued:
        run.wall_s = max(j["end"] for j in ends) - min(queued)
        run.avids_per_s = run.completed / run.wall_s if run.wall_s > 0 else 0.0
    done = [j for j in ends if j["end_type"] == "task_completed"]
    for prev, nxt in HOPS:
        vals = []
        for j in done:
            t_prev = j.get("queued") if prev == "queued" else j["finished"].get(prev)
            t_next = j["started"].get(nxt)
            if t_prev is not None and t_next is not None:
                vals.append(t_next - t_prev)
        run.hops[f"{prev} → {nxt}"] = p50_p99_ms(vals)
    for s in STAGES:
        run.stages[s] = p50_p99_ms(j["finished"][s] - j["started"][s] for j in done
                                   if s in j["started"] and s in j["finished"])
    run.e2e = p50_p99_ms(j["end"] - j["queued"] for j in done if "queued" in j)
    run.per_worker = dict(Counter(j["workers"].get("resolve", "?") for j in done))


def probe_pickup(client: redis.Redis, sub: "Submitter", avids: list[str], gap_s: float, timeout_s: float,
                 check) -> tuple[float, float, int]:
    """First pickup on an idle queue: each probe is submitted after the workers sat idle for
    ``gap_s`` (their consumers back in their poll wait), and waited for before the next one;
    the figure is the probe's ``queued`` → resolve's ``stage_started``."""
    ids = set()
    for a in avids:
        time.sleep(gap_s)
        job_id = sub.submit(a)
        ids.add(job_id)
        if not wait_terminal(client, {job_id}, timeout_s, check):
            break
    jobs = read_events(client, ids)
    return p50_p99_ms(j["started"]["resolve"] - j["queued"] for j in jobs.values()
                      if "queued" in j and "resolve" in j["started"])


def bench_pipeline(args: argparse.Namespace, work: Path, redis_url: str, redis_pid: int,
                   stack: contextlib.ExitStack) -> tuple[list[PipelineRun], dict[str, str]]:
    from pipeline.config import load

    burst = [f"BPIPE-{i:04d}" for i in range(1, args.avids + 1)]
    steady_pool = [f"BSTDY-{i:04d}" for i in range(1, args.steady_max + 1)]
    pickup_pool = [f"BPICK-{i:04d}" for i in range(1, args.pickup_probes + 1)]
    t0 = time.monotonic()
    site, stop_site = fast_fixture(burst + steady_pool + pickup_pool)
    stack.callback(stop_site)
    print(f"  fixture site {site.base_url}: {len(burst) + len(steady_pool) + len(pickup_pool)} titles "
          f"in {time.monotonic() - t0:.1f} s", flush=True)
    from pipeline.redis_client import connect

    client = stack.enter_context(contextlib.closing(connect(redis_url)))  # Event reads str
    runs: list[PipelineRun] = []
    notes: dict[str, str] = {}
    plan = [("disk", w, burst) for w in args.workers]
    if args.tmpfs_variant:
        if Path("/dev/shm").is_dir():
            plan.append(("tmpfs", max(args.workers), burst[:args.variant_avids]))
        else:
            print("  no /dev/shm: tmpfs variant skipped", flush=True)
    for where, n_workers, avids in plan:
        client.flushdb()
        site.reset()
        if where == "tmpfs":
            base = Path(tempfile.mkdtemp(prefix="nassav-bench-data-", dir="/dev/shm"))
            stack.callback(shutil.rmtree, base, True)
        else:
            base = work / f"pipe-{n_workers}w"
        extra = ({"workers": {"worker_timeout_ms": args.worker_timeout_ms}}
                 if args.worker_timeout_ms is not None else None)
        cfg_path = site.write_config(work / f"pipe-{n_workers}w-{where}.yaml", data_dir=base / "data",
                                     redis_url=redis_url, extra=extra)
        config = load(cfg_path, {})
        notes["threads"] = str(config.workers.metadata_threads)
        notes["worker_timeout_ms"] = str(config.workers.worker_timeout_ms)
        notes["data_fs"] = _fs_type(work)
        groups = [Group(f"worker {i + 1}", module_argv("gateway.cli", "worker", "--config", str(cfg_path),
                                                            "--queues", "metadata"),
                        work / f"worker-{n_workers}w-{where}-{i + 1}.log") for i in range(n_workers)]
        for g in groups:
            stack.callback(g.stop)

        def check() -> None:
            for g in groups:
                g.check()
        wait_until(f"{n_workers} metadata worker(s) to beat", lambda: client.hlen(WORKERS_KEY) >= n_workers,
                   60, check=check)
        time.sleep(0.5)  # consumers polling
        sub = Submitter(redis_url, config)
        label = f"{n_workers} worker{'s' if n_workers > 1 else ''}" + (", data on tmpfs" if where == "tmpfs" else "")
        try:
            # Burst: everything at once; AVIDs/s from the first queued to the last terminal event.
            pids = {f"worker{i + 1}": g.pid for i, g in enumerate(groups)}
            pids["redis"] = redis_pid
            with CpuMeter(pids) as meter:
                ids = {sub.submit(a) for a in avids}
                ok = wait_terminal(client, ids, args.timeout, check)
            run = PipelineRun(label, n_workers, len(ids), timed_out=not ok, cpu=meter)
            analyse(run, read_events(client, ids))
            run.files_per_avid, run.kb_per_avid = _output_per_avid(base / "data")
            runs.append(run)
            done = max(1, run.completed + run.failed)
            workers_ms = 1e3 * sum(v for k, v in meter.cpu.items() if k.startswith("worker")) / done
            print(f"  pipeline {label}, burst: {run.completed}/{run.submitted} completed, {run.failed} failed, "
                  f"{run.avids_per_s:.1f} AVIDs/s; CPU ms/AVID: workers {workers_ms:.1f}, "
                  f"redis {1e3 * meter.cpu['redis'] / done:.1f}, fixture site + submitter "
                  f"{1e3 * meter.cpu['bench'] / done:.1f}; other processes {meter.foreign_pct:.0f} % of a core"
                  + (" (TIMED OUT)" if run.timed_out else ""), flush=True)
            if run.failed:
                print("    failures: " + " | ".join(run.failures), flush=True)
            # Steady load: paced submits at a fraction of the burst rate, so the hops carry no backlog.
            if args.steady_seconds > 0 and run.avids_per_s > 0 and not run.timed_out:
                rate = max(1.0, args.steady_fraction * run.avids_per_s)
                n = max(10, min(len(steady_pool), round(rate * args.steady_seconds)))
                with CpuMeter({}) as smeter:
                    start = time.monotonic()
                    ids = set()
                    for i, a in enumerate(steady_pool[:n]):
                        delay = start + i / rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        ids.add(sub.submit(a))
                    ok = wait_terminal(client, ids, args.timeout, check)
                run.steady = PipelineRun(label, n_workers, len(ids), timed_out=not ok, rate=rate, cpu=smeter)
                analyse(run.steady, read_events(client, ids))
                print(f"  pipeline {label}, steady {rate:.1f}/s: {run.steady.completed}/{run.steady.submitted} "
                      f"completed; hops p50/p99 ms "
                      + ", ".join(f"{k} {v[0]:.1f}/{v[1]:.1f}" for k, v in run.steady.hops.items()), flush=True)
            if args.pickup_probes > 0 and where == "disk" and not run.timed_out:
                run.pickup = probe_pickup(client, sub, pickup_pool, args.pickup_gap, args.timeout, check)
                run.pickup_gap_s = args.pickup_gap
                print(f"  pipeline {label}, first pickup on an idle queue: p50 {run.pickup[0]:.1f} ms, "
                      f"p99 {run.pickup[1]:.1f} ms (n={run.pickup[2]}, {args.pickup_gap:g} s apart)", flush=True)
        finally:
            sub.close()
            for g in groups:
                g.stop()
            if where == "tmpfs":
                shutil.rmtree(base, ignore_errors=True)
    return runs, notes


def _fs_type(path: Path) -> str:
    try:
        out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)],
                             capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return out.strip() or "?"


def _output_per_avid(data_dir: Path) -> tuple[float, float]:
    """Files and KB an AVID left in the data dir, on average (logs and .redis excluded)."""
    files = size = folders = 0
    for d in data_dir.iterdir() if data_dir.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and d.name != "logs":
            folders += 1
            for f in d.rglob("*"):
                if f.is_file():
                    files += 1
                    size += f.stat().st_size
    return (files / folders, size / folders / 1024) if folders else (0.0, 0.0)


# -- the table ---------------------------------------------------------------------------

def _median(values: list[float]) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _pair_ratios(ingest: list[IngestRun], mode: str, target: str) -> list[float]:
    """``target``'s rate over the one-process gateway's, run for run (the runs alternate)."""
    one = [r.rps for r in ingest if r.target == "real gateway" and r.mode == mode]
    many = [r.rps for r in ingest if r.target == target and r.mode == mode]
    return [m / o for m, o in zip(many, one) if o]


def render(args: argparse.Namespace, ingest: list[IngestRun], loadgen: str, runs: list[PipelineRun],
           notes: dict[str, str], header: str) -> str:
    lines = [header, "", "| part | measure | setup | value | p50 ms | p99 ms | notes |",
             "|---|---|---|---:|---:|---:|---|"]
    for mode in args.modes:
        med: dict[str, float] = {}
        cpu_ms: dict[str, float] = {}
        for target in dict.fromkeys(r.target for r in ingest):
            rs = [r for r in ingest if r.target == target and r.mode == mode]
            if not rs:
                continue
            med[target] = _median([r.rps for r in rs])
            cpu_ms[target] = _median([r.server_ms_per_request for r in rs])
            rng = f"{min(r.rps for r in rs):,.0f}–{max(r.rps for r in rs):,.0f}" if len(rs) > 1 else ""
            lines.append(
                f"| ingest | {mode} AVIDs | {target} | {med[target]:,.0f} req/s | "
                f"{_median([r.p50_ms for r in rs]):.1f} | {_median([r.p99_ms for r in rs]):.1f} | "
                f"median of {len(rs)} runs{f' ({rng})' if rng else ''}; "
                f"202={sum(r.s202 for r in rs):,} 409={sum(r.s409 for r in rs):,} "
                f"other={sum(r.other + r.socket_errors for r in rs)}; CPU: server "
                f"{_median([r.cpu.pct('server') for r in rs]):.0f} % = {cpu_ms[target]:.2f} ms a request, Redis "
                f"{_median([r.cpu.pct('redis') for r in rs]):.0f} %, load generator "
                f"{_median([r.cpu.pct('children') + r.cpu.pct('bench') for r in rs]):.0f} %, "
                f"other processes {_median([r.cpu.foreign_pct for r in rs]):.0f} % |")
        if med.get("real gateway") and med.get("minimal route"):
            ratio = 100 * med["real gateway"] / med["minimal route"]
            verdict = "met" if ratio >= 70 else "**missed**"
            lines.append(f"| ingest | {mode} AVIDs | real / minimal | **{ratio:.0f} %** | | | "
                         f"target ≥ 70 %: {verdict}; per server CPU-second (what neighbours' load "
                         f"does not change): {100 * cpu_ms['minimal route'] / max(1e-9, cpu_ms['real gateway']):.0f} % |")
        for n in args.processes:
            many, pairs = f"real gateway x{n}", _pair_ratios(ingest, mode, f"real gateway x{n}")
            if med.get(many) and med.get("real gateway"):
                ratio = med[many] / med["real gateway"]
                want = 1.6 if n == 2 else 0.8 * n
                verdict = "met" if ratio >= want else "**missed**"
                lines.append(f"| ingest | {mode} AVIDs | {n} processes / 1 process | **{ratio:.2f}x** | | | "
                             f"target ≥ {want:.1f}x: {verdict}; ratio of medians; round by round "
                             f"{', '.join(f'{p:.2f}x' for p in pairs)} |")
    for run in runs:
        done = max(1, run.completed + run.failed)
        cpu = run.cpu.cpu if run.cpu else {}
        workers_ms = 1e3 * sum(v for k, v in cpu.items() if k.startswith("worker")) / done
        spread = " + ".join(str(v) for v in sorted(run.per_worker.values(), reverse=True))
        lines.append(
            f"| pipeline | AVIDs/s, resolve → scrape → cover | {run.label} | **{run.avids_per_s:.1f} AVIDs/s** | "
            f"{run.e2e[0]:,.0f} | {run.e2e[1]:,.0f} | burst of {run.submitted:,}: {run.completed:,} completed, "
            f"{run.failed} failed{' (TIMED OUT)' if run.timed_out else ''}; p50/p99 = queued → completed; "
            f"AVIDs per worker {spread}; each AVID wrote {run.files_per_avid:.0f} files, "
            f"{run.kb_per_avid:.0f} KB; CPU ms per AVID: workers {workers_ms:.0f}, Redis "
            f"{1e3 * cpu.get('redis', 0) / done:.1f}, fixture site + submitter {1e3 * cpu.get('bench', 0) / done:.0f}; "
            f"other processes {run.cpu.foreign_pct if run.cpu else 0:.0f} % of a core |")
        st = run.steady
        for key, kind in [(h, "hop") for h in run.hops] + [(s, "stage") for s in STAGES]:
            b = run.hops[key] if kind == "hop" else run.stages[key]
            name = f"hop {key}" if kind == "hop" else f"stage {key} (started → finished)"
            if st:
                s = st.hops[key] if kind == "hop" else st.stages[key]
                lines.append(f"| pipeline | {name} | {run.label}, steady {st.rate:.0f}/s | | {s[0]:.1f} | "
                             f"{s[1]:.1f} | n={s[2]}; during the burst {b[0]:,.0f} / {b[1]:,.0f} |")
            else:
                lines.append(f"| pipeline | {name} | {run.label}, burst | | {b[0]:,.1f} | {b[1]:,.1f} | n={b[2]} |")
        if st:
            worst = max((st.hops[h][1] for h in st.hops if st.hops[h][2]), default=0.0)
            verdict = "met" if worst <= HOP_P99_TARGET_MS else "**missed**"
            lines.append(f"| pipeline | per-hop p99, worst hop | {run.label}, steady {st.rate:.0f}/s | "
                         f"**{worst:.1f} ms** | | {worst:.1f} | target ≤ {HOP_P99_TARGET_MS:g} ms at half the "
                         f"burst rate: {verdict} |")
        if run.pickup[2]:
            p = run.pickup
            verdict = "met" if p[1] <= PICKUP_P99_TARGET_MS else "**missed**"
            lines.append(f"| pipeline | first pickup on an idle queue (queued → resolve started) | {run.label}, "
                         f"{p[2]} probes {run.pickup_gap_s:g} s apart | | {p[0]:.1f} | {p[1]:.1f} | "
                         f"target p99 ≤ {PICKUP_P99_TARGET_MS:g} ms: {verdict} |")
    lines.append("")
    if ingest:
        lines.append(f"Ingest: {loadgen}, {args.connections} connections, {args.rounds} runs of "
                     f"{args.duration:g} s per target and mode, the targets alternating, after a 2 s "
                     f"warm-up; Redis flushed before every run; no workers.")
    if runs:
        lines.append(f"Pipeline: jobs of kind metadata; `nassav worker --queues metadata`, "
                     f"{notes.get('threads', '?')} threads each, workers.worker_timeout_ms "
                     f"{notes.get('worker_timeout_ms', '?')} (an idle consumer's longest poll sleep); fixture site (pages at once) in the bench "
                     f"process; data dir on {notes.get('data_fs', '?')} unless said; hop = previous "
                     f"stage_finished → next stage_started (queued → resolve's stage_started first); "
                     f"steady = paced at {args.steady_fraction:.0%} of that run's burst rate; "
                     f"\"during the burst\" hops are mostly queue backlog.")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tools/bench_pipeline.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="It prints progress, then one Markdown table (also written to --markdown FILE).\n"
               "The figures are only as good as the 'other processes' CPU they report is small.")
    p.add_argument("--only", choices=("all", "ingest", "pipeline"), default="all", help="which part (default all)")
    g = p.add_argument_group("(a) ingest")
    g.add_argument("--duration", type=float, default=5.0, metavar="S", help="seconds a measured run (default 5)")
    g.add_argument("--rounds", type=int, default=2, help="runs per target and mode, alternating (default 2)")
    g.add_argument("--connections", type=int, default=50, help="keep-alive connections (default 50)")
    g.add_argument("--modes", nargs="+", choices=("distinct", "dupes"), default=["distinct", "dupes"],
                   help="distinct AVIDs and/or duplicates (default both)")
    g.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="auto = wrk (installed with apt-get when missing and root), else Python")
    g.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: the cores are scarce)")
    g.add_argument("--processes", type=int, nargs="+", default=[], metavar="N",
                   help="also measure `nassav serve --processes N` (interleaved with the one-process gateway)")
    g.add_argument("--skip-minimal", action="store_true", help="do not measure the minimal route")
    g = p.add_argument_group("(b) pipeline")
    g.add_argument("--avids", type=int, default=2000, help="AVIDs in each burst (default 2000)")
    g.add_argument("--workers", type=int, nargs="+", default=[1, 2], metavar="N",
                   help="metadata worker processes, one run each (default 1 2)")
    g.add_argument("--steady-fraction", type=float, default=0.5,
                   help="steady run paced at this fraction of the burst rate (default 0.5)")
    g.add_argument("--steady-seconds", type=float, default=6.0, metavar="S",
                   help="length of each steady run; 0 skips them (default 6)")
    g.add_argument("--steady-max", type=int, default=600, help="at most this many AVIDs a steady run (default 600)")
    g.add_argument("--pickup-probes", type=int, default=40, metavar="N",
                   help="first-pickup probes on an idle queue after each disk run; 0 skips (default 40)")
    g.add_argument("--pickup-gap", type=float, default=3.0, metavar="S",
                   help="idle seconds before each probe (default 3)")
    g.add_argument("--worker-timeout-ms", type=int, metavar="MS",
                   help="workers.worker_timeout_ms for the workers (default: the config's default)")
    g.add_argument("--tmpfs-variant", action="store_true",
                   help="one more run, data dir on /dev/shm (no disk under the fsyncs), most workers")
    g.add_argument("--variant-avids", type=int, default=1000, help="AVIDs in that run (default 1000)")
    g.add_argument("--timeout", type=float, default=180.0, metavar="S",
                   help="give up waiting for a pipeline run after this long (default 180)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table to FILE")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs) and say where")
    p.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--redis-url", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve_minimal:
        return serve_minimal(args.serve_minimal, args.redis_url)
    # SIGINT (even when started in the background, where it is ignored) and SIGTERM unwind,
    # so every child and the Redis are stopped on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="nassav-bench-"))
    ingest: list[IngestRun] = []
    runs: list[PipelineRun] = []
    loadgen, notes = "", {}
    with contextlib.ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, work, True)
        server = EmbeddedRedis(work / "redis")
        server.start()
        stack.callback(server.stop)
        with contextlib.closing(redis.Redis.from_url(server.url)) as c:
            version = c.info("server").get("redis_version")
        transport = "unix socket" if server.url.startswith("unix:") else "TCP"
        redis_info = f"Redis {version} (embedded, AOF everysec, {transport})"
        print(f"bench: {redis_info}; load average {load0:.2f}; work dir {work}", flush=True)
        if args.only in ("all", "ingest"):
            ingest, loadgen = bench_ingest(args, work, server.url, server.proc.pid, stack)
        if args.only in ("all", "pipeline"):
            runs, notes = bench_pipeline(args, work, server.url, server.proc.pid, stack)
    header = (f"nassav {git_commit()} · {os.cpu_count()} CPUs · Python {sys.version.split()[0]} · "
              f"{redis_info} · load average {load0:.2f} at start · {time.strftime('%Y-%m-%d %H:%M')} · "
              f"bench took {time.monotonic() - started:.0f} s")
    table = render(args, ingest, loadgen, runs, notes, header)
    print()
    print(table)
    if args.keep:
        print(f"\nlogs and configs kept in {work}")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_pipeline: interrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
