"""The four stages of one AVID: resolve → scrape → cover → download.

Each stage is a plain function ``(ctx, avid, job_id) -> next stage name | None``; the
Dramatiq plumbing (retries, sending the next stage, failing the job) lives in
``actors/registry.py``. Every stage is safe to run twice: it checks what the store
already has and rewrites files atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis

from actors.context import Context
from pipeline import artwork, events as ev, nfo
from pipeline.avid import Avid
from pipeline.errors import Cancelled, MutexLost, NassavError
from pipeline.events import ProgressThrottle
from pipeline.http import HttpClient
from pipeline.jobs import RUNNING
from pipeline.mutex import Mutex
from pipeline.source_health import SourceHealth
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.stages")


def _started(ctx: Context, avid: Avid, job_id: str, stage: str) -> None:
    job = ctx.jobs.get(job_id) or {}
    if job.get("status") != RUNNING:
        ctx.events.emit(ev.TASK_STARTED, avid=avid.code, job_id=job_id, stage=stage,
                        data={"status": RUNNING, "kind": job.get("kind", "")})
    ctx.jobs.update(job_id, status=RUNNING, stage=stage)
    ctx.events.emit(ev.STAGE_STARTED, avid=avid.code, job_id=job_id, stage=stage,
                    data={"worker": ctx.worker_id})


def _finished(ctx: Context, avid: Avid, job_id: str, stage: str, **data: Any) -> None:
    data["worker"] = ctx.worker_id
    ctx.events.emit(ev.STAGE_FINISHED, avid=avid.code, job_id=job_id, stage=stage, data=data)


def _warn(ctx: Context, avid: Avid, job_id: str, stage: str, message: str) -> None:
    log.warning(message)
    ctx.events.emit(ev.WARNING, avid=avid.code, job_id=job_id, stage=stage, data={"message": message})


def _source_record(found: Any) -> dict[str, Any]:
    rec = dataclasses.asdict(found)
    rec["name"] = rec.pop("source")
    rec["resolved_at"] = time.time()
    return rec


def resolve_now(ctx: Context, avid: Avid, prefer: str = "") -> tuple[dict[str, Any], list[str]]:
    """Ask the sources by weight (``prefer`` first, when the user named one), skipping those
    in back-off (unless all are); record each outcome in the shared source health. Returns
    the source record and one line per other outcome."""
    from pipeline.errors import AllSourcesFailed
    from sources.registry import resolve_any

    sources = sorted(ctx.video_sources(), key=lambda s: s.name != prefer)  # stable: weight order stays
    health = SourceHealth(ctx.redis)
    skip = health.in_backoff(s.name for s in sources)
    if len(skip) == len(sources):
        skip = set()  # all sidelined: asking beats failing without trying
    try:
        found, outcomes = resolve_any(avid, sources, skip=skip)
    except AllSourcesFailed as e:
        for o in e.outcomes:
            health.record(o.source, o.outcome, o.detail)
        raise
    for o in outcomes:
        health.record(o.source, o.outcome, o.detail)
    health.record(found.source, "found")
    return _source_record(found), [str(o) for o in outcomes]


def resolve(ctx: Context, avid: Avid, job_id: str) -> str:
    _started(ctx, avid, job_id, "resolve")
    meta = ctx.store.read_meta(avid) or {}
    src = meta.get("source") or {}
    fresh = src.get("playlist_url") and time.time() - float(src.get("resolved_at") or 0) \
        < ctx.config.download.playlist_max_age_s
    if fresh:
        _finished(ctx, avid, job_id, "resolve", source=src.get("name"), reused=True, outcomes=[])
        return "scrape"
    record, outcomes = resolve_now(ctx, avid, (ctx.jobs.get(job_id) or {}).get("source_pref", ""))
    fields = {"source": record, "resolve_outcomes": outcomes, "source_title": record.get("title", "")}
    if avid.edition:
        fields["edition"] = avid.edition
    if not meta.get("title"):
        fields["title"] = record.get("title", "")
    ctx.store.update_meta(avid, **fields)
    ctx.jobs.update(job_id, source=record["name"])
    _finished(ctx, avid, job_id, "resolve", source=record["name"], page_url=record.get("page_url", ""),
              outcomes=outcomes + [f"{record['name']}: found"])
    return "scrape"


def scrape(ctx: Context, avid: Avid, job_id: str) -> str:
    from sources.registry import scrape_any

    _started(ctx, avid, job_id, "scrape")
    entry, problems = scrape_any(avid, ctx.catalogues())
    warnings = [str(p) for p in problems]
    if entry is None:
        _warn(ctx, avid, job_id, "scrape",
              "no catalogue entry; going on with the source page's title and cover"
              + (f" ({'; '.join(warnings)})" if warnings else ""))
        ctx.store.update_meta(avid, scrape_warnings=warnings)
        _finished(ctx, avid, job_id, "scrape", catalogue=None, warnings=warnings)
        return "cover"
    e = dataclasses.asdict(entry)
    ctx.store.update_meta(
        avid,
        title=e.get("title") or (ctx.store.read_meta(avid) or {}).get("title", ""),
        original_title=e.get("title", ""),
        release_date=e.get("release_date", ""), runtime_min=e.get("runtime_min"),
        director=e.get("director", ""), studio=e.get("studio", ""), label=e.get("label", ""),
        series=e.get("series", ""), genres=e.get("genres", []), actors=e.get("actors", []),
        samples=e.get("samples", []), catalogue={"name": e.get("source"), "page_url": e.get("page_url"),
                                                 "cover_url": e.get("cover_url")},
        scrape_warnings=warnings)
    _finished(ctx, avid, job_id, "scrape", catalogue=e.get("source"), warnings=warnings)
    return "cover"


def cover(ctx: Context, avid: Avid, job_id: str) -> str | None:
    _started(ctx, avid, job_id, "cover")
    meta = ctx.store.read_meta(avid) or {}
    kind = (ctx.jobs.get(job_id) or {}).get("kind", "download")
    with HttpClient(ctx.config.http, pacer=ctx.pacer) as client:
        if ctx.store.cover(avid).exists():
            result: dict[str, Any] = {"reused": True}
        else:
            result = _fetch_cover(ctx, client, avid, job_id, meta)
        result.update(_fetch_extras(ctx, client, avid, meta))
    write_nfo(ctx, avid)
    _finished(ctx, avid, job_id, "cover", **result)
    return "download" if kind == "download" else None


def _fetch_cover(ctx: Context, client: HttpClient, avid: Avid, job_id: str,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Catalogue cover first, the source page's second; artwork written atomically."""
    candidates = [((meta.get("catalogue") or {}).get("cover_url"), (meta.get("catalogue") or {}).get("page_url")),
                  ((meta.get("source") or {}).get("cover_url"), (meta.get("source") or {}).get("page_url"))]
    errors = []
    for url, referer in candidates:
        if not url:
            continue
        try:
            # Catalogue CDNs want the site's root as Referer (FIELD_NOTES §2).
            r = client.get(url, referer=_site_root(referer) if referer else None)
            if r.status != 200:
                errors.append(f"{url}: HTTP {r.status}")
                continue
            art = artwork.make_artwork(r.content)
        except NassavError as e:
            errors.append(str(e))
            continue
        ctx.store.write(ctx.store.cover(avid), art["cover"])
        if ctx.config.library.write_poster:
            ctx.store.write(ctx.store.file(avid, "-fanart.jpg"), art["fanart"])
            ctx.store.write(ctx.store.file(avid, "-poster.jpg"), art["poster"])
            ctx.store.write(ctx.store.file(avid, "-thumb.jpg"), art["thumb"])
        ctx.store.update_meta(avid, cover_file=ctx.store.cover(avid).name)
        return {"url": url}
    _warn(ctx, avid, job_id, "cover", "no cover: " + ("; ".join(errors) or "no cover URL known"))
    return {"url": None, "errors": errors}


def _save_image(store: ResourceStore, client: HttpClient, url: str, referer: str | None, path) -> bool:
    """Fetch a picture to ``path`` unless it is there already; only pictures land in the library."""
    if path.exists():
        return True
    try:
        r = client.get(url, referer=referer)
        if r.status != 200:
            return False
        artwork.load(r.content)
    except NassavError:
        return False
    store.write(path, r.content)
    return True


def _fetch_extras(ctx: Context, client: HttpClient, avid: Avid, meta: dict[str, Any]) -> dict[str, Any]:
    """Sample stills into extrafanart/ and actor photos into .actors/, when enabled."""
    lib = ctx.config.library
    referer = _site_root((meta.get("catalogue") or {}).get("page_url") or "") if meta.get("catalogue") else None
    out: dict[str, Any] = {}
    if lib.extrafanart and meta.get("samples"):
        folder = ctx.store.dir(avid) / "extrafanart"
        out["extrafanart"] = sum(_save_image(ctx.store, client, url, referer, folder / f"fanart{i}.jpg")
                                 for i, url in enumerate(meta["samples"], 1))
    if lib.actor_photos and meta.get("actors"):
        actors, got = [], 0
        for a in meta["actors"]:
            a = dict(a)
            if a.get("avatar_url") and a.get("name"):
                rel = f".actors/{_safe_name(a['name'])}.jpg"
                if _save_image(ctx.store, client, a["avatar_url"], referer, ctx.store.dir(avid) / rel):
                    a["avatar_local"] = rel
                    got += 1
            actors.append(a)
        ctx.store.update_meta(avid, actors=actors)
        out["actor_photos"] = got
    return out


def _safe_name(name: str) -> str:
    """Jellyfin/Kodi's ``.actors/First_Last.jpg``, with nothing that could leave the folder."""
    cleaned = "".join(c if c.isalnum() or c in " -" else "_" for c in name).strip().replace(" ", "_")
    return cleaned[:80] or "actor"


def _site_root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def write_nfo(ctx: Context, avid: Avid) -> None:
    if ctx.config.library.write_nfo:
        meta = ctx.store.read_meta(avid) or {"avid": avid.code}
        ctx.store.write(ctx.store.nfo(avid), nfo.render(meta))


def download(ctx: Context, avid: Avid, job_id: str) -> None:
    if ctx.store.has_video(avid):
        write_nfo(ctx, avid)
        return
    cfg = ctx.config.download
    mutex = Mutex(ctx.redis, name="download", limit=cfg.mutex_limit, ttl_ms=cfg.mutex_ttl_ms)
    # One cancel event for the whole stage, watched from the start: a user's cancel or a worker
    # shutdown must also end the wait for a download slot, not only the download itself.
    cancel = threading.Event()
    watcher = threading.Thread(target=_watch, args=(ctx, job_id, mutex, cancel), daemon=True,
                               name="download-watch")
    watcher.start()
    try:
        ctx.jobs.update(job_id, stage="download", status=RUNNING, message="waiting for a download slot")
        mutex.acquire(cancel=cancel, on_wait=lambda: ctx.events.emit(
            ev.STAGE_STARTED, avid=avid.code, job_id=job_id, stage="download-wait",
            data={"message": "waiting for a download slot"}))
        try:
            _download_holding_slot(ctx, avid, job_id, mutex, cancel)
        except Cancelled:
            if mutex.lost.is_set():
                raise MutexLost("download mutex lost while downloading; will retry") from None
            raise
        finally:
            mutex.release()
    finally:
        cancel.set()  # also stops the watcher
        watcher.join()


def _download_holding_slot(ctx: Context, avid: Avid, job_id: str, mutex: Mutex,
                           cancel: threading.Event) -> None:
    from pipeline.hls import HlsOptions, download as hls_download

    cfg = ctx.config.download
    _started(ctx, avid, job_id, "download")
    meta = ctx.store.read_meta(avid) or {}
    src = meta.get("source") or {}
    age = time.time() - float(src.get("resolved_at") or 0)
    if not src.get("playlist_url") or age > cfg.playlist_max_age_s:
        record, _ = resolve_now(ctx, avid)
        ctx.store.update_meta(avid, source=record)
        src = record
        _finished(ctx, avid, job_id, "re-resolve", source=record["name"], age_s=round(age))

    throttle = ProgressThrottle(1.0)

    def on_progress(p: Any, _force: bool = False) -> None:
        if not (_force or throttle.allow(p.percent)):
            return
        data = {"percent": round(p.percent, 1), "speed": _speed(p.speed_bytes_per_s),
                "eta": _eta(p.eta_s), "bytes_done": p.bytes_done,
                "segments_done": p.segments_done, "segments_total": p.segments_total,
                "speed_bytes_per_s": round(p.speed_bytes_per_s)}
        try:
            ctx.jobs.update(job_id, percent=data["percent"], speed=data["speed"], eta=data["eta"])
            ctx.events.emit(ev.PROGRESS, avid=avid.code, job_id=job_id, stage="download", data=data)
        except redis.RedisError as e:  # a blip must not abort the download: the mutex decides
            log.warning("progress not recorded (%s)", e)

    headers = dict(src.get("headers") or {})
    if src.get("referer"):
        headers.setdefault("Referer", src["referer"])
    options = HlsOptions.from_config(cfg, ctx.config.http, headers=headers, file_mode=ctx.store.file_mode)
    result = hls_download(src["playlist_url"], ctx.store.video(avid), part_dir=ctx.store.part_dir(avid),
                          options=options, progress=on_progress, cancel=cancel)
    if throttle.allow(100.0):  # the engine may not have reported the last step
        on_progress(_Done(result.bytes, result.segments), _force=True)
    ctx.store.update_meta(avid, video={
        "file": ctx.store.video(avid).name, "bytes": result.bytes,
        "duration_s": round(result.duration_s, 3),
        "expected_duration_s": round(result.expected_duration_s, 3),
        "segments": result.segments, "completed_at": time.time()})
    write_nfo(ctx, avid)
    _finished(ctx, avid, job_id, "download", bytes=result.bytes, duration_s=round(result.duration_s, 3),
              segments=result.segments, segments_fetched=result.segments_fetched)


def _watch(ctx: Context, job_id: str, mutex: Mutex, cancel: threading.Event) -> None:
    """Turn a lost mutex, a worker shutdown or a user's cancel into the engine's cancel event."""
    last_poll = 0.0
    while not cancel.wait(0.25):
        if mutex.lost.is_set() or ctx.shutdown.is_set():
            cancel.set()
        elif time.monotonic() - last_poll >= 1.0:
            last_poll = time.monotonic()
            try:
                if (ctx.jobs.get(job_id) or {}).get("cancel"):
                    cancel.set()
            except Exception:  # Redis blip: the mutex renewal decides whether we go on
                pass


@dataclasses.dataclass
class _Done:
    bytes_done: int
    segments_total: int
    percent: float = 100.0
    speed_bytes_per_s: float = 0.0
    eta_s: float = 0.0

    @property
    def segments_done(self) -> int:
        return self.segments_total


def _speed(bps: float) -> str:
    for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
        if bps < 1024 or unit == "GB/s":
            return f"{bps:.1f} {unit}"
        bps /= 1024
    return ""


def _eta(s: float | None) -> str:
    if s is None:
        return ""
    s = int(s)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
