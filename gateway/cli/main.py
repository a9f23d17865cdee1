"""The ``nassav`` command.

    nassav up       the whole service on this machine (embedded Redis unless one is configured)
    nassav serve    the HTTP gateway only
    nassav follow / unfollow / subscriptions   follow actresses, makers, labels, series, searches
    nassav worker   a Dramatiq worker for some queues (run several, on several machines)
    nassav hls      download any HLS URL to an MP4 with the built-in engine
    nassav add      submit AVIDs through the API (and follow their progress)
    nassav status   queues, workers and jobs of a running service
    nassav reindex  rebuild the library index from the data dir
    nassav history / retry / block / unblock / blocklist   an AVID's past jobs, a retry, the blocklist
    nassav import   bring an existing collection into the library
    nassav upgrade  look for a better edition of a downloaded title
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.config import WorkerConfig, load, with_processes
from pipeline.errors import ConfigError

EPILOG = """examples:
  nassav up                                  start everything on http://127.0.0.1:8000
  nassav up --config deploy/config.yaml --data-dir /srv/nassav
  nassav follow actress okq --backfill 10    queue an actress's new titles (metadata only)
  nassav worker --queues download            one more download worker (set NASSAV_REDIS_URL)
  nassav serve --processes 2                 two gateway processes on one port (Linux)
  nassav hls https://host/x/master.m3u8 -o x.mp4 --concurrency 16
  nassav add ABC-123 DEF-456 --follow        queue two downloads, show a progress bar each
  nassav status                              what the service is doing
  nassav history ABC-123                     every job of ABC-123, stage by stage
  nassav upgrade ABC-123 --follow            a better edition (download.editions), if a site has one
  nassav block ABC-123 --source jable --reason "broken copy"
  nassav import /mnt/old --mode hardlink --dry-run   what an import would do
  curl -X POST http://127.0.0.1:8000/api/downloads/ABC-123

environment: NASSAV_REDIS_URL (or REDIS_URL), NASSAV_DATA_DIR, NASSAV_HOST, NASSAV_PORT,
NASSAV_API_TOKEN override the config file; NASSAV_TRANSLATION_API_KEY is the translator's key
(kept out of the file); NASSAV_URL is where the commands that talk to a running service (add, status,
history, retry, block, unblock, blocklist, follow, unfollow, subscriptions) find it."""


# The history, retry and blocklist commands (gateway/cli/history.py); clients of the API like add.
HISTORY_COMMANDS = ("history", "retry", "block", "unblock", "blocklist")


def _common(p: argparse.ArgumentParser, binds: bool = True) -> None:
    """--config and --data-dir; --host and --port, shown only where they mean something (up,
    serve): the others accept them (`nassav up` passes them on to its workers) but bind nothing."""
    p.add_argument("--config", metavar="FILE", help="YAML config (template: deploy/config.template.yaml)")
    p.add_argument("--data-dir", metavar="DIR", help="where resource/{AVID}/ folders go (default ./resource)")
    p.add_argument("--host", help="address the gateway binds (default 127.0.0.1)" if binds else argparse.SUPPRESS)
    p.add_argument("--port", type=int, help="gateway port (default 8000)" if binds else argparse.SUPPRESS)


def _processes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--processes", type=int, metavar="N",
                   help="gateway processes on the one port (default gateway.processes, 1; Linux)")


def _passthrough(args: argparse.Namespace) -> list[str]:
    out = []
    for flag in ("config", "data_dir", "host", "port"):
        v = getattr(args, flag, None)
        if v is not None:
            out += ["--" + flag.replace("_", "-"), str(v)]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nassav", description="Self-hosted AVID acquisition service.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from gateway.cli.examples import CommandParser

    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    up = sub.add_parser("up", help="start the whole service (Redis, gateway, workers); Ctrl-C stops it")
    _common(up)
    _processes(up)
    serve = sub.add_parser("serve", help="run the HTTP gateway only")
    _common(serve)
    _processes(serve)
    worker = sub.add_parser("worker", help="run a worker for some queues")
    _common(worker, binds=False)
    worker.add_argument("--queues", nargs="+", default=["metadata", "download", "notify"],
                        help="queues to consume: metadata, download, notify (default all three)")
    worker.add_argument("--threads", type=int, help=f"worker threads (default workers.download_threads, "
                        f"{WorkerConfig.download_threads}, for --queues download alone, else "
                        f"workers.metadata_threads, {WorkerConfig.metadata_threads})")
    sub.add_parser("hls", help="download an HLS stream to MP4 (see `nassav hls --help`)", add_help=False)
    add = sub.add_parser("add", help="submit AVIDs to a running service; exit 0 when all succeed")
    add.add_argument("avids", nargs="+", metavar="AVID")
    add.add_argument("--follow", "-f", action="store_true", help="show progress until every job ends")
    add.add_argument("--no-download", action="store_true",
                     help="metadata only (resolve, scrape, cover), no video")
    _client(add)
    status = sub.add_parser("status", help="queues, workers and active jobs of a running service")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    _client(status)
    hist = sub.add_parser("history", help="what every job of an AVID did, stage by stage, source by source")
    hist.add_argument("avid", metavar="AVID")
    hist.add_argument("--json", action="store_true", help="print the raw JSON")
    _client(hist)
    retry = sub.add_parser("retry", help="re-run an AVID's latest failed or cancelled job, with its options, "
                                         "from the stage where it stopped")
    retry.add_argument("avid", metavar="AVID")
    _client(retry)
    block = sub.add_parser("block", help="never queue an AVID again, or (--source) skip one site for it")
    block.add_argument("avid", metavar="AVID")
    block.add_argument("--source", default="", help="block only this source for the AVID (e.g. jable)")
    block.add_argument("--reason", default="", help="why (shown in the blocklist and in refusals)")
    _client(block)
    unblock = sub.add_parser("unblock", help="take an AVID (or --source for it) off the blocklist")
    unblock.add_argument("avid", metavar="AVID")
    unblock.add_argument("--source", default="", help="lift only this source's entry")
    _client(unblock)
    bl = sub.add_parser("blocklist", help="list the blocklist")
    bl.add_argument("--avid", default="", help="only this AVID's entries")
    bl.add_argument("--json", action="store_true", help="print the raw JSON")
    _client(bl)
    reindex = sub.add_parser("reindex", help="rebuild the library index from the data dir")
    _common(reindex, binds=False)
    from gateway.cli import follow

    follow.add_parsers(sub, _client)
    from gateway.cli import upgrade

    upgrade.add_parser(sub, _client)
    imp = sub.add_parser("import", help="bring an existing collection (any folder) into the library")
    imp.add_argument("path", metavar="PATH", help="the folder holding the videos")
    imp.add_argument("--mode", choices=("move", "hardlink", "copy", "in-place"), default="move",
                     help="how files reach the library (default move; in-place leaves them and "
                          "writes NFO and artwork beside them)")
    imp.add_argument("--dry-run", action="store_true", help="print the plan (file → AVID → target) only")
    _common(imp, binds=False)
    return p


def _client(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None,
                   help="the service (default $NASSAV_URL or http://127.0.0.1:$NASSAV_PORT, port 8000)")
    p.add_argument("--token", default=None, help="API token (default $NASSAV_API_TOKEN)")


def _config(args: argparse.Namespace):
    from pipeline.overrides import apply_stored

    cfg = load(args.config, os.environ, data_dir=args.data_dir, host=args.host, port=args.port)
    cfg = apply_stored(cfg)  # what PUT /api/setting stored in the data dir
    if getattr(args, "processes", None) is not None:  # --processes N beats gateway.processes
        cfg = with_processes(cfg, args.processes)
    return cfg


def _api(args: argparse.Namespace):
    """The running service the client commands talk to (--url/--token, else the environment)."""
    from gateway.cli import client

    url = args.url or os.environ.get("NASSAV_URL") or f"http://127.0.0.1:{os.environ.get('NASSAV_PORT') or 8000}"
    return client.ApiClient(url, args.token or os.environ.get("NASSAV_API_TOKEN") or None)


def _run_client(args: argparse.Namespace) -> int:
    from gateway.cli import client

    api = _api(args)
    try:
        if args.command == "add":
            return client.add(api, args.avids, follow=args.follow, download=not args.no_download)
        if args.command in HISTORY_COMMANDS:
            from gateway.cli import history

            if args.command == "history":
                return history.history(api, args.avid, as_json=args.json)
            if args.command == "retry":
                return history.retry(api, args.avid)
            if args.command == "block":
                return history.block(api, args.avid, source=args.source, reason=args.reason)
            if args.command == "unblock":
                return history.unblock(api, args.avid, source=args.source)
            return history.blocklist(api, avid=args.avid, as_json=args.json)
        if args.command == "upgrade":
            from gateway.cli import upgrade

            return upgrade.upgrade(api, args.avid, follow=args.follow)
        return client.status(api, as_json=args.json)
    except client.ServiceError as e:
        print(f"nassav: {e}", file=sys.stderr)
        return client.UNREACHABLE
    except KeyboardInterrupt:
        print("nassav: interrupted; the jobs go on in the service", file=sys.stderr)
        return 130


def _run_follow(args: argparse.Namespace) -> int:
    from gateway.cli import client, follow

    try:
        return follow.run(_api(args), args)
    except client.ServiceError as e:
        print(f"nassav: {e}", file=sys.stderr)
        return client.UNREACHABLE


def _redis_url_or_exit(cfg) -> str:
    if not cfg.redis_url:
        raise SystemExit("nassav: no Redis URL: set NASSAV_REDIS_URL or redis_url in the config "
                         "(or use `nassav up`, which starts an embedded Redis)")
    return cfg.redis_url


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "hls":
        from pipeline.hls.cli import run as hls_run

        hls_run(argv[1:])  # ends the process (no interpreter teardown after a download)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command in ("add", "status", "upgrade", *HISTORY_COMMANDS):
        return _run_client(args)
    if args.command in ("follow", "unfollow", "subscriptions"):
        return _run_follow(args)
    try:
        cfg = _config(args)
    except ConfigError as e:
        print(f"nassav: {e}", file=sys.stderr)
        return 2
    if args.command in ("up", "serve"):
        from gateway.auth import bind_problem

        problem = bind_problem(cfg)
        if problem:  # before anything starts: no Redis, no children
            print(f"nassav: {problem}", file=sys.stderr)
            return 2
    if args.command == "reindex":
        import time

        from gateway.index import LibraryIndex

        if not cfg.data_path.is_dir():  # a mistyped path would get an empty library made there
            print(f"nassav: no data dir at {cfg.data_path}; name the service's with --data-dir, "
                  "--config or NASSAV_DATA_DIR", file=sys.stderr)
            return 2
        t0 = time.monotonic()
        index = LibraryIndex(cfg.data_path)
        try:
            n = index.rebuild()
            counts = index.counts()
        finally:
            index.close()
        print(f"indexed {n} resources ({counts['downloaded']} downloaded, {counts['pending']} pending) "
              f"from {cfg.data_path} in {time.monotonic() - t0:.1f} s")
        return 0
    if args.command == "import":
        from gateway.cli import importing

        return importing.run(cfg, args.path, args.mode, args.dry_run, importing.service_redis(cfg))
    if args.command == "up":
        from gateway.cli import supervisor
        from pipeline import logs

        logs.setup("up", data_dir=cfg.data_path, level=cfg.log_level, json_lines=cfg.log_json)
        gateway_args = ["--processes", str(args.processes)] if args.processes is not None else []
        return supervisor.run(cfg, _passthrough(args), gateway_args=gateway_args)
    if args.command == "serve":
        from gateway.serve import serve

        return serve(cfg, _redis_url_or_exit(cfg))
    if args.command == "worker":
        from actors.worker import run

        return run(cfg, _redis_url_or_exit(cfg), args.queues, args.threads)
    parser.print_help()
    return 2

