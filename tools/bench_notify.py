"""Benchmark notifications: events on the stream → signed webhook POSTs, through a real worker.

    python -m tools.bench_notify                     # 2,000 task_completed events at 200/s
    python -m tools.bench_notify --events 500 --rate 100 --workers 2

What runs: an embedded Redis (unless ``--redis-url``), ``--workers`` processes of
``nassav worker --queues notify`` (each runs the stream dispatcher and the notify actor), a
webhook receiver in this process (a threaded HTTP server that checks every signature), and
this process appending ``task_completed`` events at ``--rate``. Latency is the receiver's
clock minus the event's ``ts`` (same machine). Reports deliveries received, duplicates,
bad signatures, latency p50/p99/max and the workers' CPU per delivery.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, float] = {}  # delivery id -> latency s
        self.duplicates = 0
        self.bad_signatures = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(self.headers.get("X-Nassav-Signature", ""), want)
                payload = json.loads(body)
                with owner.lock:
                    if not ok:
                        owner.bad_signatures += 1
                    elif payload["delivery_id"] in owner.seen:
                        owner.duplicates += 1
                    else:
                        owner.seen[payload["delivery_id"]] = now - float(payload["ts"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200.0, help="events per second")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--redis-url")
    args = ap.parse_args(argv)

    from pipeline.embedded_redis import EmbeddedRedis
    from pipeline.events import Events
    from pipeline.redis_client import connect

    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    server = None
    url = args.redis_url
    if not url:
        server = EmbeddedRedis(tmp / "redis")
        url = server.start()
    rx = Receiver()
    conf = tmp / "c.yaml"
    conf.write_text(yaml.safe_dump({"data_dir": str(tmp / "data"), "redis_url": url,
                                    "workers": {"sweep_interval_s": 0},
                                    "notify": {"targets": [{"name": "bench", "url": rx.url, "secret": SECRET,
                                                            "events": ["task_completed"]}]}}))
    r = connect(url)
    for k in list(r.scan_iter("nassav:*")) + list(r.scan_iter("nassav-dramatiq:*")):
        r.delete(k)
    log = open(tmp / "workers.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker", "--queues", "notify", "--config",
                               str(conf)], cwd=ROOT, env=dict(os.environ, NASSAV_REDIS_URL=url), stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True) for _ in range(args.workers)]
    try:
        deadline = time.monotonic() + 60
        while not (r.exists("nassav:events") and
                   any(g["name"] == "nassav-notify" for g in r.xinfo_groups("nassav:events"))):
            if time.monotonic() > deadline:
                raise SystemExit("the workers' dispatcher never came up; see " + str(tmp / "workers.log"))
            time.sleep(0.1)
        time.sleep(1.0)  # every worker's dispatcher joined the group
        cpu0 = sum(cpu_s(p.pid) for p in procs)
        events = Events(r)
        t0 = time.monotonic()
        for i in range(args.events):
            at = t0 + i / args.rate
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            events.emit("task_completed", avid=f"BEN-{i:05d}", job_id=f"j{i}", stage="download",
                        data={"status": "completed"})
        deadline = time.monotonic() + 120
        while len(rx.seen) < args.events and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = sum(cpu_s(p.pid) for p in procs) - cpu0
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
        rx.stop()
        r.close()
        if server:
            server.stop()
    lat = list(rx.seen.values())
    print(f"events {args.events} at {args.rate:g}/s, {args.workers} notify worker(s): "
          f"received {len(rx.seen)} in {elapsed:.1f} s, duplicates {rx.duplicates}, "
          f"bad signatures {rx.bad_signatures}")
    print(f"latency event → webhook: p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, "
          f"max {max(lat, default=float('nan')) * 1000:.0f} ms")
    print(f"worker CPU {cpu:.2f} s = {cpu / max(1, len(rx.seen)) * 1000:.2f} ms per delivery")
    ok = len(rx.seen) == args.events and not rx.duplicates and not rx.bad_signatures
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"workers' log kept in {tmp / 'workers.log'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
