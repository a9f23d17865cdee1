"""``nassav import PATH``: bring an existing collection into the library.

Runs the import in this process (any readable folder may be imported from the command line;
the API allows only ``library.import_roots``), on the service's Redis so claims, job history
and events are the service's. ``--dry-run`` needs no Redis: it prints the plan.
"""

from __future__ import annotations

import sys
from typing import TextIO

from pipeline.config import Config
from pipeline.import_plan import PLACE, ImportRefused, Plan, build, check_source
from pipeline.store import ResourceStore

EXIT_REFUSED = 2


def print_plan(plan: Plan, out: TextIO, *, dry_run: bool) -> None:
    """One line per file: ``file → AVID → target`` or ``file: action: reason``, then totals."""
    for item in plan.items:
        rel = item.source.relative_to(plan.root) if item.source.is_relative_to(plan.root) else item.source
        if item.action == PLACE or (item.action == "done"):
            verb = "would place" if dry_run and item.action == PLACE else item.action
            print(f"{verb}: {rel} → {item.avid.full} → {item.target}", file=out)
        else:
            what = f" ({item.avid.full})" if item.avid else ""
            print(f"{item.action}: {rel}{what}: {item.reason}", file=out)
    counts = ", ".join(f"{n} {a}" for a, n in plan.counts().items() if n)
    print(f"{'plan' if dry_run else 'import'} of {plan.root} ({plan.mode}): {counts or 'no files'}", file=out)


def service_redis(cfg: Config) -> str | None:
    """The configured Redis, else the embedded one a running ``nassav up`` keeps in the data
    dir (``.redis/redis.sock``) when it answers; None when there is neither."""
    if cfg.redis_url:
        return cfg.redis_url
    import redis

    from pipeline.redis_client import connect

    sock = cfg.data_path / ".redis" / "redis.sock"
    if not sock.exists():
        return None
    url = f"unix://{sock}"
    client = connect(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return url if client.ping() else None
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def run(cfg: Config, path: str, mode: str, dry_run: bool, redis_url: str | None,
        out: TextIO | None = None) -> int:
    """Import (or with ``dry_run`` plan) ``path``; the exit code (2 when refused)."""
    out = out or sys.stdout
    store = ResourceStore(cfg.data_path, file_mode=cfg.library.file_mode_bits)
    if dry_run:
        try:
            plan = build(check_source(path, store, mode), store, mode)
        except ImportRefused as e:
            print(f"nassav: {e}", file=sys.stderr)
            return EXIT_REFUSED
        print_plan(plan, out, dry_run=True)
        return 0
    if not redis_url:
        print("nassav: no Redis: start the service (`nassav up`), or set NASSAV_REDIS_URL or redis_url "
              "in the config (the import takes each title's claim there); --dry-run needs none",
              file=sys.stderr)
        return EXIT_REFUSED
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from actors.context import Context
    from actors.importing import run_import
    from pipeline import import_jobs

    ctx = Context.create(cfg, redis_url)
    import_id = import_jobs.new_id()
    bar = Progress(TextColumn("import"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.description}"), transient=True)
    task = bar.add_task("", total=None)

    def on_progress(p) -> None:
        bar.update(task, completed=p.done, total=p.total, description=p.item.source.name[:40])

    try:
        with bar:
            plan = run_import(ctx, import_id, path, mode, False, on_progress=on_progress)
    except ImportRefused as e:
        print(f"nassav: {e}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        ctx.redis.close()
    print_plan(plan, out, dry_run=False)
    return 0
