"""The import job: ``nassav import`` / ``POST /api/library/import`` carried out in a worker.

One Dramatiq actor, ``import_library(import_id)`` on the metadata queue, runs the plan of
:mod:`pipeline.import_plan` with :class:`pipeline.import_run.Importer`. Each title goes through
the normal claim path (``Jobs.submit`` with kind ``import``, then ``finish``), so it has a job
in the history, a running download of the same AVID is never touched, and the library index
hears ``task_completed``. Metadata comes from the catalogues (``scrape_any``) and the cover
stage's library functions; no video site is asked, since the video is already here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
from typing import Any, Callable

import dramatiq

from actors.context import Context
from pipeline import events as ev, import_jobs, jobs as jobstates, library
from pipeline.avid import Avid
from pipeline.broker import METADATA_QUEUE
from pipeline.http import HttpClient
from pipeline.import_plan import ImportRefused, Plan, build, check_source
from pipeline.import_run import Importer, Progress

log = logging.getLogger("nassav.import")

ACTOR = "import_library"
KIND = "import"
TIME_LIMIT_MS = 24 * 3600 * 1000
TOUCH_EVERY_S = 10.0


class ServiceHooks:
    """The :class:`pipeline.import_run.Hooks` of a worker (or of ``nassav import``)."""

    def __init__(self, ctx: Context, import_id: str):
        self.ctx, self.import_id = ctx, import_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.jobs: dict[str, str] = {}
        self._touched = 0.0

    def take(self, avid: Avid) -> str | None:
        fields = {"import_id": self.import_id, "owner": self.owner, "stage": KIND,
                  "status": jobstates.RUNNING, "message": "importing"}
        res = self.ctx.jobs.submit(avid.code, KIND, fields=fields)
        if not res.accepted and self._abandoned(res.job_id):
            self.ctx.jobs.finish(res.job_id, avid.code, jobstates.FAILED, stage=KIND,
                                 message=f"import interrupted (its process is gone); resumed by {self.import_id}",
                                 data={"kind": KIND})
            res = self.ctx.jobs.submit(avid.code, KIND, fields=fields)
        if not res.accepted:
            return None
        self.jobs[avid.code] = res.job_id
        # The title's one stage, as the chain's stages announce theirs: its history shows it.
        self.ctx.events.emit(ev.STAGE_STARTED, avid=avid.code, job_id=res.job_id, stage=KIND,
                             data={"import_id": self.import_id, "worker": self.ctx.worker_id})
        return res.job_id

    def _abandoned(self, job_id: str) -> bool:
        """An import job of a process on this machine that no longer runs (killed mid-title)."""
        job = self.ctx.jobs.get(job_id) or {}
        host, _, pid = (job.get("owner") or "").rpartition(":")
        if job.get("kind") != KIND or host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def release(self, avid: Avid, job_id: str, ok: bool, message: str) -> None:
        if ok:  # a failure ends the stage with the task_failed event itself
            self.ctx.events.emit(ev.STAGE_FINISHED, avid=avid.code, job_id=job_id, stage=KIND,
                                 data={"import_id": self.import_id, "worker": self.ctx.worker_id})
        self.ctx.jobs.finish(job_id, avid.code, jobstates.COMPLETED if ok else jobstates.FAILED,
                             stage=KIND, message=message, data={"import_id": self.import_id, "kind": KIND})
        self.jobs.pop(avid.code, None)

    def lookup(self, avid: Avid) -> tuple[dict[str, Any] | None, list[str]]:
        from sources.registry import scrape_any

        entry, problems = scrape_any(avid, self.ctx.catalogues())
        warnings = [str(p) for p in problems]
        if entry is None:
            return None, warnings
        return library.catalogue_fields(dataclasses.asdict(entry), warnings, {}), warnings

    def finish(self, avid: Avid) -> list[str]:
        from pipeline.localize import localize_stored

        store, lib = self.ctx.store, self.ctx.config.library
        # Converted and translated as the scrape stage does (a failing translator only warns).
        warnings = localize_stored(store, avid, self.ctx.config.translation, self.ctx.config.http,
                                   now=time.time()).warnings
        meta = store.read_meta(avid) or {}
        with HttpClient(self.ctx.config.http, pacer=self.ctx.pacer) as client:
            got = library.fetch_cover(store, client, avid, meta, lib)
            library.fetch_extras(store, client, avid, meta, lib)
        library.write_nfo(store, avid, lib, self.ctx.config.translation.nfo_title)
        return [*warnings, *([got.warning] if got.warning else [])]

    def touch(self, avid: Avid) -> None:
        now = time.monotonic()
        job_id = self.jobs.get(avid.code)
        if job_id and now - self._touched >= TOUCH_EVERY_S:
            self._touched = now
            self.ctx.jobs.update(job_id, message="importing (copying)")


def run_import(ctx: Context, import_id: str, path: str, mode: str, dry_run: bool,
               on_progress: Callable[[Progress], None] | None = None) -> Plan:
    """Plan (and unless ``dry_run`` carry out) one import, recording it under ``import_id``
    and emitting its events. Raises :class:`ImportRefused` for a path or mode refused."""
    key = import_jobs.key(import_id)
    r = ctx.redis
    if not r.exists(key):  # the command line's import; the API wrote the record already
        r.hset(key, mapping=import_jobs.initial(path, mode, dry_run))
    r.hset(key, mapping={"status": "running", "updated_at": f"{time.time():.3f}"})
    try:
        root = check_source(path, ctx.store, mode)
        importer = Importer(ctx.store, ServiceHooks(ctx, import_id),
                            on_item=lambda p: _progress(ctx, import_id, p, on_progress),
                            space=ctx.gate.disk if ctx.gate else None)
        resumed = [] if dry_run else importer.resume()
        plan = build(root, ctx.store, mode)
        r.hset(key, "total", str(len(plan.items)))
        if not dry_run:
            importer.run(plan)
    except ImportRefused as e:
        _end(ctx, import_id, "failed", str(e), None)
        raise
    except Exception as e:
        _end(ctx, import_id, "failed", f"import failed: {e}", None)
        raise
    message = f"{plan.counts()}" + (f"; resumed {', '.join(resumed)}" if resumed else "")
    if not dry_run and importer.left_in_journal:
        message += f"; left in the journal (retried by the next run): {', '.join(importer.left_in_journal)}"
    _end(ctx, import_id, "completed", message, plan)
    return plan


def _progress(ctx: Context, import_id: str, p: Progress, also: Callable[[Progress], None] | None) -> None:
    item = p.item
    ctx.redis.hset(import_jobs.key(import_id), mapping={"done": str(p.done), "updated_at": f"{time.time():.3f}"})
    ctx.events.emit(import_jobs.PROGRESS, avid=item.avid.code if item.avid else "", job_id=import_id,
                    stage=import_jobs.STAGE, data={"import_id": import_id, "done": p.done, "total": p.total,
                                                   "percent": round(100 * p.done / max(p.total, 1), 1),
                                                   **item.to_dict()})
    if also:
        also(p)


def _end(ctx: Context, import_id: str, status: str, message: str, plan: Plan | None) -> None:
    fields = {"status": status, "message": message, "updated_at": f"{time.time():.3f}"}
    if plan is not None:
        fields["counts"] = json.dumps(plan.counts())
        fields["report"] = json.dumps([i.to_dict() for i in plan.items])
    key = import_jobs.key(import_id)
    ctx.redis.hset(key, mapping=fields)
    ctx.redis.expire(key, import_jobs.FINISHED_TTL_S)
    ctx.events.emit(import_jobs.FINISHED, avid="", job_id=import_id, stage=import_jobs.STAGE,
                    data={"import_id": import_id, "status": status, "message": message,
                          "counts": plan.counts() if plan else {},
                          "path": str(plan.root) if plan else ""})
    log.info("import %s %s: %s", import_id, status, message)


def declare_import(broker: dramatiq.Broker,
                   context: Callable[[], Context] | None) -> dict[str, dramatiq.Actor]:
    """The ``import_library`` actor on ``broker`` (sending needs no context; running does),
    and ``import``, which the sweep sends for a title's claim whose import died: it ends that
    job (the journal keeps the title for the next run, which resumes it)."""

    def import_library(import_id: str) -> None:
        if context is None:
            raise RuntimeError("this process only sends messages; run it in `nassav worker`")
        ctx = context()
        h = ctx.redis.hgetall(import_jobs.key(import_id))
        if not h or h.get("status") in ("completed", "failed"):
            return
        try:
            run_import(ctx, import_id, h["path"], h["mode"], h.get("dry_run") == "1")
        except ImportRefused:
            return  # recorded on the import; nothing to retry

    def end_abandoned(avid_code: str, job_id: str) -> None:
        if context is None:
            raise RuntimeError("this process only sends messages; run it in `nassav worker`")
        ctx = context()
        if ctx.jobs.is_live(job_id):
            ctx.jobs.finish(job_id, avid_code, jobstates.FAILED, stage=KIND,
                            message="import interrupted; run the import again to resume it",
                            data={"kind": KIND})

    return {ACTOR: dramatiq.actor(import_library, broker=broker, actor_name=ACTOR, queue_name=METADATA_QUEUE,
                                  time_limit=TIME_LIMIT_MS, max_retries=0),
            KIND: dramatiq.actor(end_abandoned, broker=broker, actor_name=KIND, queue_name=METADATA_QUEUE,
                                 time_limit=60_000, max_retries=0)}
