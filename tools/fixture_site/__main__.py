"""``python -m tools.fixture_site``: run the fixture site until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from pipeline.stop_signals import stop_on_signals
from tools.fixture_site import FixtureSite, demo_avids
from tools.fixture_site.media import KINDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.fixture_site",
        description="Offline fake of the sites, catalogue and HLS CDN nassav talks to. "
                    "Control it with GET/POST /_control and read counters at /_stats.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765, help="0 = a free port (default 8765)")
    ap.add_argument("--titles", type=int, default=0, metavar="N", help="serve DEMO-001 … DEMO-00N")
    ap.add_argument("--avid", action="append", default=[], metavar="AVID",
                    help="serve this AVID too (repeatable)")
    ap.add_argument("--stream-kind", default="aes128", choices=KINDS)
    ap.add_argument("--duration", type=float, default=12.0, metavar="S", help="stream length in seconds")
    ap.add_argument("--segment", type=float, default=2.0, metavar="S", help="segment length in seconds")
    ap.add_argument("--video-kbps", type=int, default=800, help="video bitrate (sets the stream size)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="stream cache (default tools/.cache/streams)")
    ap.add_argument("--write-config", type=Path, metavar="FILE", help="write a nassav config for this server")
    ap.add_argument("--data-dir", help="data_dir of the written config")
    ap.add_argument("--redis-url", help="redis_url of the written config")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    titles = list(dict.fromkeys(demo_avids(args.titles) + [a.upper() for a in args.avid])) or ["DEMO-001"]
    stop = threading.Event()
    # Handlers first: a SIGTERM that arrives while the stream is generated still exits cleanly.
    stop_on_signals(stop)  # not a handler calling stop.set(): see pipeline/stop_signals.py
    try:
        site = FixtureSite.start(host=args.host, port=args.port, titles=titles,
                                 stream_kind=args.stream_kind, duration_s=args.duration,
                                 segment_s=args.segment, video_kbps=args.video_kbps,
                                 cache_dir=args.cache_dir, verbose=args.verbose)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"fixture site: cannot start: {e}", file=sys.stderr)
        return 1
    try:
        if args.write_config:
            site.write_config(args.write_config, data_dir=args.data_dir, redis_url=args.redis_url)
        print(f"fixture site listening on {site.base_url}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
