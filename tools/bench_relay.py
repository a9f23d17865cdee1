"""Benchmark the event relay: many WebSocket subscribers, a steady event rate, no loss allowed.

    python -m tools.bench_relay                      # 1,000 subscribers, 200 events/s, 30 s
    python -m tools.bench_relay --subscribers 200 --rate 50 --duration 5

What runs, each in its own process so the gateway gets a core of its own on a 2-core box:
an embedded Redis (unless ``--redis-url``), the gateway (``nassav serve``), ``--procs``
subscriber processes, and this process, which appends events to the stream at ``--rate``.

Latency is receive time minus the event's ``ts`` (both taken from the same machine clock):
the subscriber stamps a chunk when its event loop reads it from the socket. An event counts as
delivered to a subscriber only when it arrives in stream order after every earlier one, so
"lost" also covers duplicates and reordering.

The subscriber side is a minimal WebSocket client written on ``asyncio.Protocol`` (handshake,
unmasked server frames, pong replies): a full client library costs more CPU per message than
the gateway does, and on two cores that would measure the client instead of the relay.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUCKET_MS = 0.5  # latency histogram resolution
BUCKETS_PER_S = 1000 / BUCKET_MS
MAX_BUCKET = 20_000  # 10 s: anything slower lands in the last bucket


# -- subscriber process -------------------------------------------------------------------

class _Shared:
    """What all subscribers of one process share: the histogram and a per-event cache."""

    def __init__(self) -> None:
        self.hist = [0] * (MAX_BUCKET + 1)
        self.meta: dict[bytes, tuple[tuple[int, int], float]] = {}  # id -> (order key, ts)
        self.closed = 0


class _Subscriber(asyncio.Protocol):
    def __init__(self, shared: _Shared, request: bytes, ready: asyncio.Future):
        self.shared, self.request, self.ready = shared, request, ready
        self.buf = bytearray()
        self.open = False
        self.count = 0
        self.bad_order = 0
        self.last_key = (0, 0)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buf:
            data = bytes(self.buf) + data
            self.buf.clear()
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf += data
                return
            head, data = data[:end], data[end + 4:]
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.open = True
            self.ready.set_result(None)
        # Walk the frame headers to the end of the last complete frame (answering pings on
        # the way), then pick every event's id and ts out of those frames with one regex.
        pos, n = 0, len(data)
        while n - pos >= 2:
            ln = data[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln, hdr = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln, hdr = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
            if n - pos < hdr + ln:
                break
            if data[pos] & 0x0F == 9:  # a server ping needs a (masked) pong, or uvicorn drops us
                self.transport.write(_frame(0xA, data[pos + hdr:pos + hdr + ln]))
            pos += hdr + ln
        if pos < n:
            self.buf += data[pos:]
        shared = self.shared
        meta, hist, last = shared.meta, shared.hist, self.last_key
        count = bad = 0
        for eid, tsb in _EVENT.findall(data, 0, pos):
            m = meta.get(eid)
            if m is None:
                ms, _, seq = eid.partition(b"-")
                m = meta[eid] = ((int(ms), int(seq)), float(tsb))
            key, ts = m
            if key <= last:
                bad += 1
                continue
            last = key
            count += 1
            b = int((now - ts) * BUCKETS_PER_S)
            hist[b if 0 <= b < MAX_BUCKET else (0 if b < 0 else MAX_BUCKET)] += 1
        self.last_key = last
        self.count += count
        self.bad_order += bad


# An event frame's stream id and its ts (queue_status and pings have neither), in the key
# order of ``Event.to_message``; if that order changes, nothing matches and the run fails
# loudly (every delivery "lost").
_EVENT = re.compile(rb'"id":"(\d+-\d+)","data":\{"task_id":"[^"]*","avid":"[^"]*",'
                    rb'"stage":"[^"]*","ts":([0-9.]+)')


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def _subscriber_main(host: str, port: int, path: str, count: int) -> None:
    shared = _Shared()
    loop = asyncio.get_running_loop()
    subs: list[_Subscriber] = []

    async def one() -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        ready = loop.create_future()
        _, proto = await loop.create_connection(lambda: _Subscriber(shared, req, ready), host, port)
        await asyncio.wait_for(ready, 30)
        subs.append(proto)

    # Connect in waves: a thousand simultaneous handshakes only measure the accept backlog.
    for i in range(0, count, 50):
        await asyncio.gather(*(one() for _ in range(min(50, count - i))))
    _emit({"ready": len(subs)})

    line = await loop.run_in_executor(None, sys.stdin.readline)  # {"expect": N, "grace_s": s}
    order = json.loads(line)
    deadline = time.monotonic() + float(order["grace_s"])
    while time.monotonic() < deadline and any(s.count < order["expect"] for s in subs):
        await asyncio.sleep(0.05)
    counts = [s.count for s in subs]
    _emit({"counts": counts, "bad_order": sum(s.bad_order for s in subs), "closed": shared.closed,
           "hist": _sparse(shared.hist)})
    for s in subs:
        s.transport.close()


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _sparse(hist: list[int]) -> dict[str, int]:
    return {str(i): c for i, c in enumerate(hist) if c}


def _run_subscriber(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/ws/tasks/")
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args(argv)
    _use_uvloop()
    asyncio.run(_subscriber_main(a.host, a.port, a.path, a.count))
    return 0


# -- coordinator --------------------------------------------------------------------------

def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; Linux)."""
    try:
        parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in parts]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _percentile(hist: list[int], q: float) -> float:
    total = sum(hist)
    if not total:
        return float("nan")
    want, seen = q * total, 0
    for i, c in enumerate(hist):
        seen += c
        if seen >= want:
            return (i + 1) * BUCKET_MS  # upper edge: never flatter than the truth
    return MAX_BUCKET * BUCKET_MS


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the gateway did not answer {url} within {timeout_s} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run(subscribers: int, rate: float, duration_s: float, procs: int, redis_url: str | None,
        grace_s: float = 10.0) -> dict[str, Any]:
    """Run one benchmark; returns the figures (see ``main`` for the table)."""
    import redis

    from pipeline.embedded_redis import EmbeddedRedis
    from pipeline.events import PROGRESS, STREAM, encode

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = subscribers + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))

    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    started: list[subprocess.Popen] = []
    embedded = None
    try:
        if not redis_url:
            embedded = EmbeddedRedis(tmp / "redis")
            redis_url = embedded.start()
        client = redis.Redis.from_url(redis_url)
        port = _free_port()
        env = dict(os.environ, NASSAV_REDIS_URL=redis_url)
        # One address holds every subscriber here: lift the per-client connection bound.
        (tmp / "bench.yaml").write_text("ws_max_per_client: 0\n")
        gw = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                               "--host", "127.0.0.1", "--data-dir", str(tmp / "data"),
                               "--config", str(tmp / "bench.yaml")],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        started.append(gw)
        _wait_http(f"http://127.0.0.1:{port}/health", gw, 30)

        per = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
        subs = [subprocess.Popen([sys.executable, "-m", "tools.bench_relay", "_subscriber",
                                  "--port", str(port), "--count", str(n)],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 start_new_session=True) for n in per if n]
        started += subs
        connect_t0 = time.monotonic()
        for s in subs:
            line = s.stdout.readline()
            if not line:
                raise SystemExit("a subscriber process died while connecting")
        connect_s = time.monotonic() - connect_t0

        cpu0 = {p.pid: _cpu_s(p.pid) for p in [gw, *subs]}
        redis_pid = embedded.proc.pid if embedded else None
        busy0, self0, redis0 = _machine_busy_s(), _self_cpu_s(), _cpu_s(redis_pid) if redis_pid else 0.0
        total = int(rate * duration_s)
        t0 = time.monotonic()
        late = 0.0
        for i in range(total):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late = max(late, -delay)
            fields = encode(PROGRESS, avid=f"BENCH-{i % 50:03d}", job_id=f"bench{i % 50:04d}",
                            stage="download",
                            data={"percent": round(100 * i / total, 1), "speed": "12.3 MB/s",
                                  "eta": "0:42", "bytes_done": i * 65536, "segments_done": i,
                                  "segments_total": total, "speed_bytes_per_s": 12_900_000})
            client.xadd(STREAM, fields, maxlen=100_000, approximate=True)
        publish_s = time.monotonic() - t0

        for s in subs:
            s.stdin.write(json.dumps({"expect": total, "grace_s": grace_s}) + "\n")
            s.stdin.flush()
        hist = [0] * (MAX_BUCKET + 1)
        counts: list[int] = []
        bad_order = closed = 0
        for s in subs:
            line = s.stdout.readline()
            if not line:
                raise SystemExit("a subscriber process died before reporting")
            res = json.loads(line)
            counts += res["counts"]
            bad_order += res["bad_order"]
            closed += res["closed"]
            for k, c in res["hist"].items():
                hist[int(k)] += c
        wall = time.monotonic() - t0
        cpu = {p.pid: _cpu_s(p.pid) - cpu0[p.pid] for p in [gw, *subs]}
        ours = sum(cpu.values()) + _self_cpu_s() - self0 + ((_cpu_s(redis_pid) - redis0) if redis_pid else 0.0)
        others = max(0.0, _machine_busy_s() - busy0 - ours)
        client.close()
        return {
            "subscribers": subscribers, "procs": len(subs), "rate": rate, "duration_s": duration_s,
            "events": total, "deliveries_expected": total * subscribers, "deliveries": sum(counts),
            "subscribers_complete": sum(1 for c in counts if c == total),
            "lost": total * subscribers - sum(counts), "bad_order": bad_order, "dropped": closed,
            "p50_ms": _percentile(hist, 0.50), "p90_ms": _percentile(hist, 0.90),
            "p99_ms": _percentile(hist, 0.99), "max_ms": _percentile(hist, 1.0),
            "publish_s": publish_s, "publisher_late_ms": late * 1000, "connect_s": connect_s,
            "gateway_cpu_pct": 100 * cpu[gw.pid] / wall,
            "subscriber_cpu_pct": 100 * sum(cpu[p.pid] for p in subs) / wall,
            "cores": os.cpu_count(), "others_cpu_pct": 100 * others / wall,
        }
    finally:
        for p in reversed(started):
            _stop(p)
        if embedded:
            embedded.stop()


def table(r: dict[str, Any]) -> str:
    ok_loss = r["lost"] == 0 and r["bad_order"] == 0
    ok_p99 = r["p99_ms"] < 100
    rows = [
        ("subscribers (processes)", f"{r['subscribers']:,} ({r['procs']})"),
        ("events/s × seconds", f"{r['rate']:g} × {r['duration_s']:g} = {r['events']:,} events"),
        ("deliveries expected / made", f"{r['deliveries_expected']:,} / {r['deliveries']:,}"),
        ("lost / out of order / dropped", f"{r['lost']:,} / {r['bad_order']:,} / {r['dropped']:,}"
                                          f"   {'OK' if ok_loss else 'FAIL'}"),
        ("latency p50 / p90 / p99", f"{r['p50_ms']:.1f} / {r['p90_ms']:.1f} / {r['p99_ms']:.1f} ms"
                                    f"   {'OK' if ok_p99 else 'FAIL'} (target p99 < 100 ms)"),
        ("latency max", f"{r['max_ms']:.1f} ms"),
        ("gateway CPU", f"{r['gateway_cpu_pct']:.0f} % of one core"),
        ("subscriber CPU", f"{r['subscriber_cpu_pct']:.0f} % of one core (all processes)"),
        ("publisher late by (max)", f"{r['publisher_late_ms']:.1f} ms"),
        ("connect 1 by 1 in waves", f"{r['connect_s']:.1f} s"),
        ("cores; CPU used by other programs", f"{r['cores']}; {r['others_cpu_pct']:.0f} % of one core"),
    ]
    w = max(len(a) for a, _ in rows)
    return "\n".join(f"| {a:<{w}} | {b} |" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_subscriber":
        return _run_subscriber(argv[1:])
    p = argparse.ArgumentParser(prog="python -m tools.bench_relay", description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200, help="events per second")
    p.add_argument("--duration", type=float, default=30, help="seconds of publishing")
    p.add_argument("--procs", type=int, default=1, help="subscriber processes")
    p.add_argument("--redis-url", default=os.environ.get("NASSAV_REDIS_URL") or os.environ.get("REDIS_URL"))
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    a = p.parse_args(argv)
    r = run(a.subscribers, a.rate, a.duration, a.procs, a.redis_url)
    print(table(r))
    if a.json:
        print(json.dumps(r))
    return 0 if r["lost"] == 0 and r["bad_order"] == 0 and r["p99_ms"] < 100 else 1


if __name__ == "__main__":
    sys.exit(main())
