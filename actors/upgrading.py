"""An edition upgrade (job kind ``upgrade``): its resolve and download stages.

``POST /api/resource/{avid}/upgrade`` and the periodic check (:mod:`actors.upgrade_check`)
make the job through the normal claim path. Its resolve asks the sources for an edition
preferred to the one the library holds (:func:`sources.editions.seek_better`); with none,
the job ends there and nothing on disk changes. With one, the download stage (the chain
skips scrape and cover) fetches it like any download: the HLS engine writes a temp file
beside the old video, verifies it, and renames it over the old one, so the old video stays
until the new one has been verified, and stays for good when anything fails.

The events carry the facts (``edition_from``, ``edition_to``, the source, the offers); the
metadata JSON records the new ``edition`` and appends to ``edition_history``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from actors.context import Context
from actors.stages import UPGRADE, _finished, _started, download_progress, hls_options
from pipeline import library
from pipeline.avid import Avid
from pipeline.blocklist import Blocklist
from pipeline.editions import label, preference
from pipeline.errors import NothingToUpgrade
from pipeline.jobs import COMPLETED, TERMINAL
from pipeline.source_health import SourceHealth

__all__ = ["UPGRADE", "resolve", "ready", "replace_holding_slot"]

log = logging.getLogger("nassav.upgrading")


def resolve(ctx: Context, avid: Avid, job_id: str) -> None:
    """The resolve stage of an upgrade: look for a better edition and record it on the job;
    with none, end the job here (its download stage then has nothing to do)."""
    if not _seek(ctx, avid, job_id):
        _end_unchanged(ctx, avid, job_id, "resolve")


def ready(ctx: Context, avid: Avid, job_id: str) -> bool:
    """Is there a better edition for the download stage to fetch? A job sent straight to its
    download (a retry starts at the stage that failed), or whose source the user has blocked
    for this AVID since, looks for one first; with none it ends here, unchanged."""
    job = ctx.jobs.get(job_id) or {}
    if job.get("status") in TERMINAL:
        return False
    found = json.loads(job.get("upgrade_source") or "{}")
    if found and found.get("name") not in Blocklist(ctx.redis).blocked_sources(avid.code):
        return True
    if _seek(ctx, avid, job_id):
        return True
    _end_unchanged(ctx, avid, job_id, "download")
    return False


def _end_unchanged(ctx: Context, avid: Avid, job_id: str, stage: str) -> None:
    """End the job: no better edition. ``unchanged``: nothing landed, so no notification and no
    media-server rescan."""
    ctx.jobs.finish(job_id, avid.code, COMPLETED, stage=stage,
                    message=(ctx.jobs.get(job_id) or {}).get("message", ""), data={"unchanged": True})


def _seek(ctx: Context, avid: Avid, job_id: str) -> bool:
    """Ask the sources for an edition preferred to the one held; put what was found on the job
    (``upgrade_source``) and the facts on a ``stage_finished`` event. True when one was found."""
    from sources.editions import seek_better
    from sources.registry import source_record

    _started(ctx, avid, job_id, "resolve")
    if not ctx.store.has_video(avid):
        raise NothingToUpgrade(avid.code)
    meta = ctx.store.read_meta(avid) or {}
    held = meta.get("edition") or ""
    found, offers = seek_better(avid, ctx.video_sources(), SourceHealth(ctx.redis, ctx.events),
                                preference(ctx.config.download.editions), than=held,
                                blocked=Blocklist(ctx.redis).blocked_sources(avid.code))
    if found is None:
        # No source: none served this job (the attempts history reads the resolve's source).
        _finished(ctx, avid, job_id, "resolve", upgrade=False, edition_from=label(held), edition_to=None,
                  source=None, offers=offers)
        ctx.jobs.update(job_id, message=f"{avid.code}: no source has an edition preferred to {label(held)}")
        return False
    record = source_record(found)
    ctx.jobs.update(job_id, source=found.source, upgrade_source=json.dumps(record),
                    edition_from=label(held), edition_to=label(found.edition))
    _finished(ctx, avid, job_id, "resolve", upgrade=True, edition_from=label(held),
              edition_to=label(found.edition), source=found.source, page_url=found.page_url, offers=offers)
    return True


def replace_holding_slot(ctx: Context, avid: Avid, job_id: str, cancel: threading.Event,
                         speed_limit: int | None = None) -> None:
    """Download the better edition over the old video (holding a download slot);
    ``speed_limit`` is the download gate's rate cap in force (None: the config's)."""
    from pipeline.hls import download as hls_download

    cfg = ctx.config.download
    job = ctx.jobs.get(job_id) or {}
    src: dict[str, Any] = json.loads(job["upgrade_source"])
    _started(ctx, avid, job_id, "download", message="downloading a better edition",
             slot_since=f"{time.time():.3f}")
    if not ctx.store.has_video(avid):
        raise NothingToUpgrade(avid.code)
    before = ctx.store.read_meta(avid) or {}
    held = before.get("edition") or ""
    if time.time() - float(src.get("resolved_at") or 0) > cfg.playlist_max_age_s:
        src = _resolve_again(ctx, avid, src)
    # The engine verifies the new file beside the old one and only then renames it over it.
    # An imported video in another container or in parts is not renamed over: it goes once
    # the record names the new MP4 (an in-place file outside the folder is left, forgotten).
    target = ctx.store.download_target(avid)
    superseded = [p for p in ctx.store.videos(avid, before) if p != target and p.parent == ctx.store.dir(avid)]
    result = hls_download(src["playlist_url"], target, part_dir=ctx.store.part_dir(avid),
                          options=hls_options(ctx, src, speed_limit),
                          progress=download_progress(ctx, avid, job_id), cancel=cancel)
    now = time.time()
    step = {"from": label(held), "to": label(src.get("edition", "")), "source": src.get("name"),
            "job_id": job_id, "at": now}
    ctx.store.update_meta(avid, video=library.video_fields(target.name, result, now),
                          edition=src.get("edition", ""), edition_asked=False, source=src,
                          edition_history=[*(before.get("edition_history") or []), step])
    for old in superseded:
        old.unlink(missing_ok=True)
    library.write_nfo(ctx.store, avid, ctx.config.library, ctx.config.translation.nfo_title)
    _finished(ctx, avid, job_id, "download", upgrade=True, replaced=True, edition_from=step["from"],
              edition_to=step["to"], source=src.get("name"), bytes=result.bytes,
              duration_s=round(result.duration_s, 3), segments=result.segments,
              segments_fetched=result.segments_fetched)


def _resolve_again(ctx: Context, avid: Avid, src: dict[str, Any]) -> dict[str, Any]:
    """A fresh playlist URL for the same edition on the same source (tokens expire)."""
    from sources.registry import source_record

    for site in ctx.video_sources():
        if site.name == src.get("name"):
            try:
                return source_record(site.resolve(avid, [src.get("edition", "")]))
            finally:
                site.close()
    return src  # the source was disabled since: try the URL we have
