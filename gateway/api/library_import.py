"""Import an existing collection: ``POST /api/library/import`` starts a job, ``GET`` follows it.

The path must be a folder under one of ``library.import_roots`` (empty: the API may not import
at all; the command line ``nassav import`` may import any folder). The job runs in a worker
(``import_library``, queue ``metadata``) and reports ``import_progress`` events on the event
stream, then ``import_finished``; its record holds the plan with what became of every file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, ApiState, body_bool, doc, envelope, json_object, state
from pipeline import import_jobs
from pipeline.import_plan import MODES, MODES_FORM, ImportRefused, check_source

ACTOR = "import_library"  # actors.importing.ACTOR; sent by name, as the gateway only sends


def allowed_root(st: ApiState, path: Path) -> Path:
    """``path`` resolved, when it lies under an import root; else a 400 naming the roots.

    400, not 403: the web page reads a 403 as "the API token was refused" and asks for another."""
    roots = [Path(r).resolve() for r in st.config.library.import_roots]
    if not roots:
        raise ApiError(400, "importing through the API is disabled: list the folders it may import "
                            "from in library.import_roots (or run `nassav import PATH` on the server)")
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop is a RuntimeError before Python 3.13
        raise ApiError(400, f"{path} cannot be resolved: {e}") from None
    if not any(real == r or r in real.parents for r in roots):
        raise ApiError(400, f"{path} is not under an import root; allowed: "
                            f"{', '.join(str(r) for r in roots)}")
    return real


@doc(body={"path": "the folder to import (under library.import_roots)",
           "mode": "move (default), hardlink, copy or in-place", "dry_run": "true: only plan"},
     responses={202: "the import job, queued", 400: "path or mode refused, or not under an import root"})
async def start_import(request: Request) -> JSONResponse:
    st = state(request)
    body = await json_object(request)
    path, mode = body.get("path"), body.get("mode", "move")
    if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path or len(path) > 4096:
        raise ApiError(400, "path must be an absolute folder path such as /srv/old-collection")
    if mode not in MODES:
        raise ApiError(400, f"mode must be {MODES_FORM}")
    dry_run = bool(body_bool(body, "dry_run"))
    real = allowed_root(st, Path(path))
    try:
        await run_in_threadpool(check_source, real, st.store, mode)
    except ImportRefused as e:
        raise ApiError(400, str(e)) from None
    import_id = import_jobs.new_id()
    await st.redis.hset(import_jobs.key(import_id), mapping=import_jobs.initial(str(real), mode, dry_run))
    st.actors.by_name[ACTOR].send(import_id)
    return envelope({"import_id": import_id, "status": "queued", "path": str(real), "mode": mode,
                     "dry_run": dry_run, "events": [import_jobs.PROGRESS, import_jobs.FINISHED]},
                    code=202, message="import queued")


async def get_import(request: Request) -> JSONResponse:
    st = state(request)
    import_id = request.path_params["import_id"]
    if not import_id.startswith("imp-") or len(import_id) > 40:
        raise ApiError(404, "no such import (ids look like imp-0123456789abcdef)")
    h: dict[str, Any] = await st.redis.hgetall(import_jobs.key(import_id))
    if not h:
        raise ApiError(404, f"no import {import_id} (finished imports are kept for a week)")
    return envelope(import_jobs.view(import_id, h))


def routes() -> list[Route]:
    return [Route("/library/import", start_import, methods=["POST"]),
            Route("/library/import/{import_id}", get_import, methods=["GET"])]
