"""Files per second of ``nassav import``: the plan alone, and the whole import.

    python -m tools.bench_import [--files 1000] [--mode move]

Generates a collection of ``--files`` tiny real videos under messy names
(:mod:`tools.import_collection`: every name form, duplicates, non-video files, unknown codes,
a few library conflicts), starts the fixture site (its catalogue knows the generated titles)
and an embedded Redis, then times:

- **plan**: walking the folder, identifying every name, grouping parts and checking the library
  (what ``--dry-run`` does, no network);
- **import**: the whole run as ``nassav import`` does it (claims, catalogue pages over HTTP,
  cover and artwork, NFO, placing the files, events), files handled per second.

It checks the outcome against the collection's expectations, so a fast but wrong import shows
up as mismatches, not as a better figure.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--mode", default="move", choices=("move", "copy", "hardlink", "in-place"))
    args = ap.parse_args(argv)

    from actors.context import Context
    from actors.importing import run_import
    from pipeline.config import load
    from pipeline.embedded_redis import EmbeddedRedis
    from pipeline.import_plan import build, check_source
    from tools.fixture_site import FixtureSite
    from tools.import_collection import make_collection

    tmp = Path(tempfile.mkdtemp(prefix="nassav-bench-import-"))
    redis_server = EmbeddedRedis(tmp / "redis")
    site = None
    try:
        redis_server.start()
        t0 = time.perf_counter()
        col = make_collection(tmp / "old", args.files, library=tmp / "data")
        made_s = time.perf_counter() - t0
        site = FixtureSite.start(titles=tuple(col.known))
        cfg = load(site.write_config(tmp / "c.yaml", data_dir=tmp / "data", redis_url=redis_server.url), {})
        ctx = Context.create(cfg, redis_server.url)

        t0 = time.perf_counter()
        plan = build(check_source(col.root, ctx.store, args.mode), ctx.store, args.mode)
        plan_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        plan = run_import(ctx, "imp-bench", str(col.root), args.mode, False)
        import_s = time.perf_counter() - t0

        by_rel = {str(i.source.relative_to(col.root)): i for i in plan.items}
        wrong = sum(1 for rel, e in col.files.items()
                    if by_rel[rel].action != e.action or (e.reason and e.reason not in by_rel[rel].reason))
        n = len(plan.items)
        print(f"collection: {n} files ({plan.counts()}), generated in {made_s:.1f} s")
        print(f"plan:   {n / plan_s:,.0f} files/s ({plan_s:.2f} s)")
        print(f"import: {n / import_s:,.1f} files/s ({import_s:.1f} s, mode {args.mode}); "
              f"{wrong} file(s) not as expected")
        ctx.redis.close()
        return 1 if wrong else 0
    finally:
        if site is not None:
            site.stop()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
