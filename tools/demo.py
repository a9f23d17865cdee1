"""``make demo``: the whole flow offline — the fixture site plus ``nassav up`` pointed at it.

Serves DEMO-001…DEMO-005 from a local fake of every source, catalogue and CDN, so a newcomer
with no access to the real sites sees a submit turn into an MP4, a cover and an NFO.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from tools.fixture_site import FixtureSite, demo_avids

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    p.add_argument("--site-port", type=int, default=8765, help="fixture site port (default 8765)")
    p.add_argument("--dir", default=str(ROOT / ".demo"), help="where the demo's config and data go")
    p.add_argument("--titles", type=int, default=5, help="how many DEMO-00N titles to serve")
    args = p.parse_args(argv)

    base = Path(args.dir).resolve()
    data = base / "resource"
    data.mkdir(parents=True, exist_ok=True)
    print("preparing the fixture site (the first run generates test streams with ffmpeg)…", flush=True)
    site = FixtureSite.start(port=args.site_port, titles=demo_avids(args.titles))
    cfg = site.write_config(base / "config.yaml", data_dir=data)
    print(f"""
  fixture site : {site.base_url}   (stands in for every source, JavBus and the CDN)
  config       : {cfg}
  gateway      : http://127.0.0.1:{args.port}

  try it:
    curl -X POST http://127.0.0.1:{args.port}/api/downloads/DEMO-001
    curl http://127.0.0.1:{args.port}/api/tasks/queue/status
  the MP4 lands in {data}/DEMO-001/DEMO-001.mp4
  Ctrl-C stops everything.
""", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "up", "--config", str(cfg),
                             "--port", str(args.port)], cwd=ROOT)
    # `nassav up` does the orderly stop; we only pass the signal on (a terminal's Ctrl-C
    # reaches it directly too, and a second SIGINT is harmless there).
    signal.signal(signal.SIGINT, lambda *_: proc.send_signal(signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        return proc.wait()
    finally:
        site.stop()


if __name__ == "__main__":
    sys.exit(main())
