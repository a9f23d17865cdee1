"""A title's media: its cover at a few sizes (resized lazily, cached, revalidated), and removing
only the video (metadata, covers and NFO stay)."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.api.common import ApiError, ApiState, avid_of, choice_param, doc, envelope, notify, state
from pipeline.artwork import NotAnImage, resize_width
from pipeline.avid import Avid
from pipeline.errors import OtherEdition

COVER_WIDTHS = {"small": 200, "medium": 600, "large": 1200}

VIDEO_DELETED = "video_deleted"


async def delete_video(st: ApiState, avid_text: object):
    """Remove the AVID's video and download parts; ``(code, message, data)`` naming what went.

    409 while a job runs for the AVID; 404 when there is no video, or the folder holds another
    edition (the message names the one it holds)."""
    avid = avid_of(avid_text)
    job = await st.jobs.live_job(avid.code)
    if job:
        raise ApiError(409, f"{avid.code} has a job in progress ({job}); cancel it first "
                            f"(DELETE /api/downloads/{avid.code})", {"avid": avid.code, "job_id": job})
    try:
        gone = await run_in_threadpool(st.store.delete_video, avid)
    except OtherEdition as e:
        held = e.held or avid.code
        raise ApiError(404, f"{e}; to delete its video: DELETE /api/resource/{held}/video",
                       {"avid": avid.code, "edition": avid.edition, "held": e.held}) from None
    if gone is None:
        raise ApiError(404, f"{avid.full} has no video in the library")
    await run_in_threadpool(st.index.sync, [avid])
    await notify(st, VIDEO_DELETED, avid.code, files=gone)
    return 200, f"{avid.full}: video deleted ({len(gone)} files)", {"avid": avid.code, "deleted_files": gone}


@doc(responses={200: "data.deleted_files lists what went; metadata, covers and NFO stay",
                404: "no video, or the folder holds another edition", 409: "a job is in progress"})
async def delete_video_route(request: Request) -> JSONResponse:
    """Delete only an AVID's video (and any partial download)."""
    code, message, data = await delete_video(state(request), request.path_params["avid"])
    return envelope(data, code=code, message=message)


# -- covers --------------------------------------------------------------------------------

def _cover_file(st, avid: Avid, size: str) -> Path:
    """The cover at ``size``, made from the full cover and cached in the data dir on first use."""
    src = st.store.cover(avid)
    if size == "original":
        return src
    cached = st.store.cover_cache(avid, size)
    try:
        fresh = cached.stat().st_mtime_ns >= src.stat().st_mtime_ns
    except FileNotFoundError:
        fresh = False
    if not fresh:
        st.store.write(cached, resize_width(src.read_bytes(), COVER_WIDTHS[size]))
    return cached


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@doc(query={"avid": "the AVID", "size": "small (200 px) | medium (600) | large (1200) | original (default)"},
     responses={200: "image/jpeg", 304: "not modified", 404: "no cover"})
async def cover(request: Request) -> Response:
    """A cover image, resized lazily and cached; answers 304 on revalidation."""
    st = state(request)
    p = request.query_params
    avid = avid_of(p.get("avid", ""))
    size = choice_param(p, "size", tuple(COVER_WIDTHS) + ("original",), "original")
    try:
        src_stat = st.store.cover(avid).stat()
    except OSError:
        raise ApiError(404, f"{avid.code} has no cover") from None
    etag = f'"{avid.code}-{size}-{src_stat.st_mtime_ns:x}-{src_stat.st_size:x}"'
    last_modified = email.utils.formatdate(src_stat.st_mtime, usegmt=True)
    headers = {"ETag": etag, "Last-Modified": last_modified, "Cache-Control": "no-cache"}
    inm, ims = request.headers.get("if-none-match"), request.headers.get("if-modified-since")
    if inm is not None:
        if _etag_matches(inm, etag):
            return Response(status_code=304, headers=headers)
    elif ims:
        try:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError):
            since = None
        if since is not None and int(src_stat.st_mtime) <= since:
            return Response(status_code=304, headers=headers)
    try:
        path = await run_in_threadpool(_cover_file, st, avid, size)
    except NotAnImage as e:
        raise ApiError(404, f"{avid.code}: the stored cover is not readable ({e})") from None
    except FileNotFoundError:
        raise ApiError(404, f"{avid.code} has no cover") from None
    # FileResponse would set its own validators from the cache file; ours follow the source.
    return FileResponse(path, media_type="image/jpeg", headers=headers, stat_result=os.stat(path))


def routes() -> list:
    """The media routes, relative to ``/api``."""
    return [Route("/resource/{avid}/video", delete_video_route, methods=["DELETE"])]
