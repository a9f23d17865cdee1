"""The four stages of one AVID: resolve, scrape, cover, download.

Each stage is a plain function ``(ctx, avid, job_id) -> None`` that loads what it needs, calls
``sources``/``pipeline`` and reports through events. Their order, and where a job of each kind
stops, is declared once in :data:`actors.registry.CHAIN`; the Dramatiq plumbing (retries,
sending the next stage, failing the job) lives there too. Every stage is safe to run twice:
it checks what the store already has and rewrites files atomically.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import threading
import time
from typing import Any, Callable, Mapping

import redis

from actors.context import Context
from pipeline import events as ev, library
from pipeline.avid import Avid
from pipeline.blocklist import Blocklist
from pipeline.diskspace import DiskAlarm
from pipeline.download_gate import Paused
from pipeline.editions import label, preference
from pipeline.errors import Cancelled, MutexLost
from pipeline.events import ProgressThrottle
from pipeline.http import HttpClient
from pipeline.jobs import RUNNING
from pipeline.mutex import Mutex
from pipeline.progress import progress_fields
from pipeline.source_health import SourceHealth
from pipeline.watch import cancel_when

log = logging.getLogger("nassav.stages")

UPGRADE = "upgrade"  # the job kind of an edition upgrade (actors/upgrading.py)


def _started(ctx: Context, avid: Avid, job_id: str, stage: str, **fields: Any) -> None:
    job = ctx.jobs.get(job_id) or {}
    if job.get("status") != RUNNING:
        ctx.events.emit(ev.TASK_STARTED, avid=avid.code, job_id=job_id, stage=stage,
                        data={"status": RUNNING, "kind": job.get("kind", "")})
    ctx.jobs.update(job_id, status=RUNNING, stage=stage, **fields)
    ctx.events.emit(ev.STAGE_STARTED, avid=avid.code, job_id=job_id, stage=stage,
                    data={"worker": ctx.worker_id})


def _finished(ctx: Context, avid: Avid, job_id: str, stage: str, **data: Any) -> None:
    data["worker"] = ctx.worker_id
    ctx.events.emit(ev.STAGE_FINISHED, avid=avid.code, job_id=job_id, stage=stage, data=data)


def _warn(ctx: Context, avid: Avid, job_id: str, stage: str, message: str) -> None:
    log.warning(message)
    ctx.events.emit(ev.WARNING, avid=avid.code, job_id=job_id, stage=stage, data={"message": message})


def resolve_offers(ctx: Context, avid: Avid, prefer: str = "",
                   edition: str | None = None) -> tuple[dict[str, Any], list[str], list[dict]]:
    """Ask the sources, never those the user blocked for this AVID, for the most preferred
    edition (:func:`sources.editions.resolve_editions`). Returns the source record for the
    metadata JSON, one line per other outcome, and what each source asked offered.
    ``edition``: the one the user asked for (the job's ``edition``), taken instead of the
    preference; no other is taken when no source has it."""
    from sources.editions import resolve_asked, resolve_editions
    from sources.registry import source_record

    if edition:
        found, outcomes, offers = resolve_asked(avid, ctx.video_sources(), SourceHealth(ctx.redis, ctx.events),
                                                edition, prefer=prefer,
                                                blocked=Blocklist(ctx.redis).blocked_sources(avid.code))
        return source_record(found), [str(o) for o in outcomes], offers
    found, outcomes, offers = resolve_editions(avid, ctx.video_sources(), SourceHealth(ctx.redis, ctx.events),
                                               preference(ctx.config.download.editions), prefer=prefer,
                                               blocked=Blocklist(ctx.redis).blocked_sources(avid.code))
    return source_record(found), [str(o) for o in outcomes], offers


def refresh_parts(job: dict[str, Any]) -> set[str] | None:
    """What a refresh job was asked to fetch again (its ``refresh`` field: ``m3u8``,
    ``metadata``); None for any other job, whose stages keep what is fresh."""
    if "refresh" not in job:
        return None
    return {p.strip() for p in job["refresh"].split(",") if p.strip()}


def resolve(ctx: Context, avid: Avid, job_id: str) -> None:
    job = ctx.jobs.get(job_id) or {}
    if job.get("kind") == UPGRADE:
        from actors import upgrading
        return upgrading.resolve(ctx, avid, job_id)
    _started(ctx, avid, job_id, "resolve")
    parts = refresh_parts(job)
    meta = ctx.store.read_meta(avid) or {}
    src = meta.get("source") or {}
    if parts is None:
        fresh = src.get("playlist_url") and time.time() - float(src.get("resolved_at") or 0) \
            < ctx.config.download.playlist_max_age_s
    else:
        fresh = bool(src.get("playlist_url")) and "m3u8" not in parts
    if fresh and src.get("name") in Blocklist(ctx.redis).blocked_sources(avid.code):
        fresh = False  # the user blocked the source this playlist came from, for this title
    asked = job.get("edition") or None  # ABC-123-C: that edition, not the preference
    if fresh and asked is not None and src.get("edition", "") != asked:
        fresh = False  # the playlist is of another edition than the one asked for
    if fresh:
        _finished(ctx, avid, job_id, "resolve", source=src.get("name"), reused=True, outcomes=[])
        return
    record, outcomes, offers = resolve_offers(ctx, avid, job.get("source_pref", ""), asked)
    ctx.store.update_meta(avid, **library.resolved_fields(avid, record, outcomes, meta))
    ctx.jobs.update(job_id, source=record["name"])
    _finished(ctx, avid, job_id, "resolve", source=record["name"], page_url=record.get("page_url", ""),
              outcomes=outcomes + [f"{record['name']}: found"], edition=label(record.get("edition", "")),
              offers=offers)


def scrape(ctx: Context, avid: Avid, job_id: str) -> None:
    from sources.registry import scrape_any

    _started(ctx, avid, job_id, "scrape")
    parts = refresh_parts(ctx.jobs.get(job_id) or {})
    if parts is not None and "metadata" not in parts and (ctx.store.read_meta(avid) or {}).get("catalogue"):
        _finished(ctx, avid, job_id, "scrape", catalogue=None, reused=True, warnings=[])
        return
    entry, problems = scrape_any(avid, ctx.catalogues())
    warnings = [str(p) for p in problems]
    if entry is None:
        _warn(ctx, avid, job_id, "scrape",
              "no catalogue entry; going on with the source page's title and cover"
              + (f" ({'; '.join(warnings)})" if warnings else ""))
        ctx.store.update_meta(avid, scrape_warnings=warnings)
        _finished(ctx, avid, job_id, "scrape", catalogue=None, warnings=warnings,
                  **_localize(ctx, avid, job_id, parts))
        return
    known = {} if entry.title else ctx.store.read_meta(avid) or {}  # read only for a fallback title
    fields = library.catalogue_fields(dataclasses.asdict(entry), warnings, known)
    ctx.store.update_meta(avid, **fields)
    _finished(ctx, avid, job_id, "scrape", catalogue=entry.source, warnings=warnings,
              **_localize(ctx, avid, job_id, parts))


def _localize(ctx: Context, avid: Avid, job_id: str, parts: set[str] | None) -> dict[str, Any]:
    """Chinese conversion and translation of the metadata just scraped (pipeline/localize.py);
    a translator's failure is a warning, never the stage's. Returns the report for the event."""
    from pipeline.localize import localize_stored

    got = localize_stored(ctx.store, avid, ctx.config.translation, ctx.config.http,
                          force=parts is not None and "metadata" in parts, now=time.time())
    for w in got.warnings:
        _warn(ctx, avid, job_id, "scrape", w)
    return got.report


def cover(ctx: Context, avid: Avid, job_id: str) -> None:
    _started(ctx, avid, job_id, "cover")
    parts = refresh_parts(ctx.jobs.get(job_id) or {})
    meta = ctx.store.read_meta(avid) or {}
    lib = ctx.config.library
    with HttpClient(ctx.config.http, pacer=ctx.pacer) as client:
        got = library.fetch_cover(ctx.store, client, avid, meta, lib,
                                  replace=parts is not None and "metadata" in parts)
        if got.warning:
            _warn(ctx, avid, job_id, "cover", got.warning)
        result = {**got.report, **library.fetch_extras(ctx.store, client, avid, meta, lib)}
    library.write_nfo(ctx.store, avid, lib, ctx.config.translation.nfo_title)
    _finished(ctx, avid, job_id, "cover", **result)


def download(ctx: Context, avid: Avid, job_id: str) -> None:
    upgrade = (ctx.jobs.get(job_id) or {}).get("kind") == UPGRADE
    have = [] if upgrade else ctx.store.videos(avid)
    if upgrade:
        from actors import upgrading
        if not upgrading.ready(ctx, avid, job_id):
            return
    elif have:
        # Downloaded before, or imported (any container, in parts, in place): never fetch a
        # stream beside it.
        names = [p.name for p in have]
        log.info("%s already has its video (%s); download skipped", avid.code, ", ".join(names))
        library.write_nfo(ctx.store, avid, ctx.config.library, ctx.config.translation.nfo_title)
        _finished(ctx, avid, job_id, "download", reused=True, files=names,
                  message=f"{avid.code} already has its video ({', '.join(names)}); nothing downloaded")
        return
    alarm = DiskAlarm(ctx.redis, ctx.events)
    began = time.monotonic()
    # The gate (free space, download hours, rate caps by the hour) may stop a download; it
    # then waits for the gate and starts again from its part directory. After a stop for a
    # low disk it waits for what the stop freed on top of the threshold (the engine's temp MP4
    # grows beside the parts and is deleted on a stop): else it would restart and stop again.
    extra = int(float((ctx.jobs.get(job_id) or {}).get("disk_extra") or 0))
    while True:
        _wait_for_gate(ctx, avid, job_id, alarm, began, extra)
        extra = _download_once(ctx, avid, job_id, alarm)
        if extra is None:
            return
        ctx.jobs.update(job_id, disk_extra=extra)  # kept for the message sent again after a long wait


def _wait_for_gate(ctx: Context, avid: Avid, job_id: str, alarm: DiskAlarm, began: float,
                   extra_bytes: int = 0) -> None:
    """Return once downloads may run. Waiting holds no slot and uses no retry: after
    ``download.pause_resend_s`` in this message :class:`Paused` gives it back to the queue."""
    gate = ctx.gate
    while True:
        reading = gate.disk.read(extra_bytes)
        # disk_low / disk_ok speak of min_free_gb alone: one job's hold is its own business
        # (workers holding different amounts would otherwise announce low and ok in turn).
        alarm.observe(dataclasses.replace(reading, need_bytes=-1), avid=avid.code, job_id=job_id)
        pause = gate.check(reading)
        if pause is None:
            return
        message = f"waiting: {pause.message}"
        job = ctx.jobs.get(job_id) or {}
        if job.get("message") != message:
            ctx.jobs.update(job_id, stage="download", status=RUNNING, message=message, slot_since="",
                            wait_reason=pause.kind)
            if job.get("wait_reason") != pause.kind:  # one event per reason, not per reading
                log.info("download waits: %s", pause.message)
                ctx.events.emit(ev.STAGE_STARTED, avid=avid.code, job_id=job_id, stage="download-wait",
                                data={**pause.data(), "message": message})
        if ctx.shutdown.is_set() or job.get("cancel"):
            raise Cancelled(f"cancelled while {message}")
        if time.monotonic() - began >= ctx.config.download.pause_resend_s:
            raise Paused(pause)
        ctx.shutdown.wait(gate.poll_s)


def _download_once(ctx: Context, avid: Avid, job_id: str, alarm: DiskAlarm) -> int | None:
    """Take a slot and download: None when done; when the gate stopped it (the part directory
    is kept for the next try), the bytes the stop freed if it stopped for a low disk, else 0."""
    cfg = ctx.config.download
    gate = ctx.gate
    limit = gate.speed_limit(cfg.speed_limit_bytes_per_s)
    stopped: list[str] = []
    free_at_stop: list[int] = []

    def gate_stops() -> bool:
        reading = gate.disk.read()
        pause = gate.check(reading)
        if pause is not None:
            alarm.observe(reading, avid=avid.code, job_id=job_id)
            stopped.append(pause.message)
            if pause.disk is not None:
                free_at_stop.append(reading.free_bytes)
        elif gate.speed_limit(cfg.speed_limit_bytes_per_s) != limit:
            stopped.append(f"the rate cap is now {gate.describe_limit(cfg.speed_limit_bytes_per_s)}")
        return bool(stopped)

    mutex = Mutex(ctx.redis, name="download", limit=cfg.mutex_limit, ttl_ms=cfg.mutex_ttl_ms)
    # One cancel event for the whole try, watched from the start: a user's cancel, a worker
    # shutdown or the gate must also end the wait for a download slot, not only the download.
    with cancel_when(threading.Event(), name="download-watch",
                     now=lambda: mutex.lost.is_set() or ctx.shutdown.is_set(),
                     poll=lambda: bool((ctx.jobs.get(job_id) or {}).get("cancel")) or gate_stops()) as cancel:
        ctx.jobs.update(job_id, stage="download", status=RUNNING, message="waiting for a download slot",
                        slot_since="", wait_reason="")
        try:
            mutex.acquire(cancel=cancel, on_wait=lambda: ctx.events.emit(
                ev.STAGE_STARTED, avid=avid.code, job_id=job_id, stage="download-wait",
                data={"message": "waiting for a download slot"}))
            if (ctx.jobs.get(job_id) or {}).get("kind") == UPGRADE:
                from actors import upgrading
                upgrading.replace_holding_slot(ctx, avid, job_id, cancel, limit)
            else:
                _download_holding_slot(ctx, avid, job_id, cancel, limit)
            return None
        except Cancelled:
            if mutex.lost.is_set():
                raise MutexLost("download mutex lost while downloading; will retry") from None
            if not stopped or ctx.shutdown.is_set():
                raise
        except OSError as e:
            # The disk filled before the guard's next reading: wait like any low disk.
            reading = gate.disk.read()
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not reading.low:
                raise
            stopped.append(str(e))
            free_at_stop.append(reading.free_bytes)
        finally:
            mutex.release()
    freed = max(0, gate.disk.read().free_bytes - free_at_stop[0]) if free_at_stop else 0
    log.info("download stopped: %s; parts kept", stopped[0])
    ctx.events.emit(ev.STAGE_FINISHED, avid=avid.code, job_id=job_id, stage="download-stop",
                    data={"message": f"stopped: {stopped[0]}; the parts are kept", "freed_bytes": freed,
                          "worker": ctx.worker_id})
    return freed


def download_progress(ctx: Context, avid: Avid, job_id: str) -> Callable[[Any], None]:
    """Progress events as a download (or an upgrade's) sends them, throttled: the engine always
    reports 100 % once the MP4 is in place, and the throttle lets that through."""
    throttle = ProgressThrottle(1.0)

    def on_progress(p: Any) -> None:
        if not throttle.allow(p.percent):
            return
        data = progress_fields(p)
        try:
            ctx.jobs.update(job_id, percent=data["percent"], speed=data["speed"], eta=data["eta"])
            ctx.events.emit(ev.PROGRESS, avid=avid.code, job_id=job_id, stage="download", data=data)
        except redis.RedisError as e:  # a blip must not abort the download: the mutex decides
            log.warning("progress not recorded (%s)", e)
    return on_progress


def hls_options(ctx: Context, src: Mapping[str, Any], speed_limit: int | None = None):
    """The engine's options for a source record (its headers and referer); ``speed_limit`` is
    the download gate's rate cap in force (None: the config's)."""
    from pipeline.hls import HlsOptions

    headers = dict(src.get("headers") or {})
    if src.get("referer"):
        headers.setdefault("Referer", src["referer"])
    options = HlsOptions.from_config(ctx.config.download, ctx.config.http, headers=headers,
                                     file_mode=ctx.store.file_mode)
    if speed_limit is not None:
        options = dataclasses.replace(options, speed_limit_bytes_per_s=speed_limit)
    return options


def _download_holding_slot(ctx: Context, avid: Avid, job_id: str, cancel: threading.Event,
                           speed_limit: int) -> None:
    from pipeline.hls import download as hls_download

    cfg = ctx.config.download
    # ``slot_since`` tells a job downloading now from one waiting for a slot (the old client's
    # queue shows only the former as active); it is on the record before stage_started goes out.
    _started(ctx, avid, job_id, "download", message="downloading", slot_since=f"{time.time():.3f}")
    job = ctx.jobs.get(job_id) or {}
    meta = ctx.store.read_meta(avid) or {}
    src = meta.get("source") or {}
    age = time.time() - float(src.get("resolved_at") or 0)
    if not src.get("playlist_url") or age > cfg.playlist_max_age_s \
            or src.get("name") in Blocklist(ctx.redis).blocked_sources(avid.code):
        # As the job asked at resolve: ABC-123-C's edition (never the preference's instead),
        # and its preferred source. A download that waited (quiet hours, a queue) gets here.
        record, _, _ = resolve_offers(ctx, avid, job.get("source_pref", ""), job.get("edition") or None)
        ctx.store.update_meta(avid, source=record)
        src = record
        _finished(ctx, avid, job_id, "re-resolve", source=record["name"], age_s=round(age))

    target = ctx.store.download_target(avid)
    result = hls_download(src["playlist_url"], target, part_dir=ctx.store.part_dir(avid),
                          options=hls_options(ctx, src, speed_limit),
                          progress=download_progress(ctx, avid, job_id), cancel=cancel)
    # edition_asked: the user named this edition (ABC-123-C), so the periodic edition check
    # leaves it (pipeline/upgrade_check.py); an upgrade asked by hand clears it.
    ctx.store.update_meta(avid, video=library.video_fields(target.name, result, time.time()),
                          edition=src.get("edition", meta.get("edition", "")),
                          edition_asked=bool(job.get("edition")))
    library.write_nfo(ctx.store, avid, ctx.config.library, ctx.config.translation.nfo_title)
    _finished(ctx, avid, job_id, "download", bytes=result.bytes, duration_s=round(result.duration_s, 3),
              segments=result.segments, segments_fetched=result.segments_fetched)
