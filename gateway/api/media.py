"""A title's media: its cover at a few sizes (resized lazily, cached, revalidated), streaming its
video (byte ranges, for a ``<video>`` element), and removing only the video (metadata, covers
and NFO stay)."""

from __future__ import annotations

import email.utils
import os
import re
import stat
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.api.common import (ApiError, ApiState, avid_of, bool_param, choice_param, doc, envelope,
                                not_modified, notify, state)
from pipeline.artwork import NotAnImage, resize_width
from pipeline.avid import Avid
from pipeline.errors import InPlaceOriginal, OtherEdition

COVER_WIDTHS = {"small": 200, "medium": 600, "large": 1200}

VIDEO_DELETED = "video_deleted"

# The Content-Type of each container an import keeps (downloads are always MP4).
VIDEO_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mkv": "video/x-matroska", ".webm": "video/webm",
    ".avi": "video/x-msvideo", ".wmv": "video/x-ms-wmv", ".asf": "video/x-ms-asf",
    ".ts": "video/mp2t", ".m2ts": "video/mp2t", ".mts": "video/mp2t", ".mov": "video/quicktime",
    ".flv": "video/x-flv", ".f4v": "video/mp4", ".mpg": "video/mpeg", ".mpeg": "video/mpeg",
    ".vob": "video/mpeg", ".3gp": "video/3gpp", ".divx": "video/x-msvideo",
    ".rm": "application/vnd.rn-realmedia", ".rmvb": "application/vnd.rn-realmedia-vbr",
}
PART_FORM = "part must be a whole number from 1 (the first part) to the title's number of parts"


def video_type(path: Path) -> str:
    """The Content-Type to serve a video file with, from its container."""
    return VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _part_of(request: Request) -> int:
    raw = request.query_params.get("part")
    if raw is None:
        return 1
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 999:
        raise ApiError(400, f"{PART_FORM} (got {raw[:20]!r})")
    return int(raw)


async def delete_video(st: ApiState, avid_text: object, *, originals: bool = False):
    """Remove the AVID's video and download parts; ``(code, message, data)`` naming what went.

    409 while a job runs for the AVID, or when the video is an in-place import's (the user's
    own file) and ``originals`` does not confirm deleting it; 404 when there is no video, or
    the folder holds another edition (the message names the one it holds)."""
    avid = avid_of(avid_text)
    job = await st.jobs.live_job(avid.code)
    if job:
        raise ApiError(409, f"{avid.code} has a job in progress ({job}); cancel it first "
                            f"(DELETE /api/downloads/{avid.code})", {"avid": avid.code, "job_id": job})
    try:
        gone = await run_in_threadpool(lambda: st.store.delete_video(avid, originals=originals))
    except InPlaceOriginal as e:
        confirm = f"DELETE /api/resource/{avid.full}/video?delete_file=true"
        raise ApiError(409, f"{e}; to delete it all the same: {confirm}",
                       {"avid": avid.code, "in_place": True, "files": e.files, "confirm": confirm}) from None
    except OtherEdition as e:
        held = e.held or avid.code
        raise ApiError(404, f"{e}; to delete its video: DELETE /api/resource/{held}/video",
                       {"avid": avid.code, "edition": avid.edition, "held": e.held}) from None
    if gone is None:
        raise ApiError(404, f"{avid.full} has no video in the library")
    await run_in_threadpool(st.index.sync, [avid])
    await notify(st, VIDEO_DELETED, avid.code, files=gone)
    return 200, f"{avid.full}: video deleted ({len(gone)} files)", {"avid": avid.code, "deleted_files": gone}


@doc(query={"delete_file": "true confirms deleting a video imported in place (the user's own file where "
                           "it lies); without it such a video answers 409"},
     responses={200: "data.deleted_files lists what went; metadata, covers and NFO stay",
                400: "delete_file is not true or false",
                404: "no video, or the folder holds another edition",
                409: "a job is in progress, or the video was imported in place and delete_file=true is missing "
                     "(data.files: its paths)"})
async def delete_video_route(request: Request) -> JSONResponse:
    """Delete only an AVID's video (and any partial download); a video imported in place is the
    user's own file, deleted only with ``?delete_file=true``."""
    originals = bool(bool_param(request.query_params, "delete_file"))
    code, message, data = await delete_video(state(request), request.path_params["avid"], originals=originals)
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
    if not_modified(request, etag, src_stat.st_mtime):
        return Response(status_code=304, headers=headers)
    try:
        path = await run_in_threadpool(_cover_file, st, avid, size)
    except NotAnImage as e:
        raise ApiError(404, f"{avid.code}: the stored cover is not readable ({e})") from None
    except FileNotFoundError:
        raise ApiError(404, f"{avid.code} has no cover") from None
    # FileResponse would set its own validators from the cache file; ours follow the source.
    return FileResponse(path, media_type="image/jpeg", headers=headers, stat_result=os.stat(path))


RANGE_FORM = ("Range must be bytes=START-END, bytes=START- or bytes=-LENGTH (byte offsets from 0; "
              "several separated by commas)")
_RANGE_PART = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def range_refusal(header: str, size_bytes: int) -> tuple[int, str] | None:
    """Why a ``Range`` header cannot be served from a file of ``size_bytes``: ``(400, why)`` when
    it is malformed, ``(416, why)`` when it starts past the end; None when it can.

    It judges as Starlette's ``FileResponse`` then serves (every range must start inside the
    file), so that a refusal gets an envelope that names the accepted form instead of its
    plain-text "Malformed range header"."""
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return 400, f"{RANGE_FORM} (got {header[:40]!r})"
    for part in spec.split(","):
        m = _RANGE_PART.match(part)
        if not m or not (m.group(1) or m.group(2)):
            return 400, f"{RANGE_FORM} (got {header[:40]!r})"
        first, last = m.group(1), m.group(2)
        if first and last and int(last) < int(first):
            return 400, f"{RANGE_FORM}; END must not be before START (got {part.strip()!r})"
        start = int(first) if first else size_bytes - min(int(last), size_bytes)
        if start >= size_bytes:
            return 416, f"the range {part.strip()!r} starts past the end of the video ({size_bytes} bytes)"
    return None


@doc(query={"part": "which part of a multi-part title, from 1 (default 1)"},
     responses={200: "the whole file: video/mp4, or the imported container's type (video/x-matroska…)",
                206: "the requested byte range(s)",
                304: "not modified (If-None-Match / If-Modified-Since)",
                400: "a malformed Range header or part", 404: "no video (or no such part), or the "
                "folder holds another edition", 416: "a range past the end"})
async def video(request: Request) -> Response:
    """Stream the AVID's video for a player: byte ranges, ``ETag``/``Last-Modified``, ``If-Range``.

    A title in parts serves part 1, and ``?part=N`` the others (``X-Video-Parts`` says how
    many). A bare AVID plays whatever edition its folder holds; an AVID with an edition plays
    only that edition."""
    st = state(request)
    avid = avid_of(request.path_params["avid"])
    part = _part_of(request)
    paths = await run_in_threadpool(st.store.videos, avid)
    if not paths:
        raise ApiError(404, f"{avid.full} has no video in the library", {"avid": avid.code})
    if part > len(paths):
        raise ApiError(404, f"{avid.full} has {len(paths)} part(s); ask for part=1 to part={len(paths)}",
                       {"avid": avid.code, "parts": len(paths)})
    path = paths[part - 1]
    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        raise ApiError(404, f"{avid.full} has no video in the library", {"avid": avid.code})
    if avid.edition:
        held = await run_in_threadpool(st.store.held, avid)
        if held is None or held.edition != avid.edition:
            name = held.full if held else avid.code
            raise ApiError(404, f"the library holds {name}, not {avid.full}; play it at "
                                f"/api/resource/{name}/video", {"avid": avid.code, "held": name})
    which = f"-p{part}" if part > 1 else ""
    etag = f'"{avid.code}-video{which}-{info.st_mtime_ns:x}-{info.st_size:x}"'
    headers = {"ETag": etag, "Last-Modified": email.utils.formatdate(info.st_mtime, usegmt=True),
               "Cache-Control": "no-cache", "Accept-Ranges": "bytes", "X-Video-Parts": str(len(paths))}
    if not_modified(request, etag, info.st_mtime):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    refused = range_refusal(wanted, info.st_size) if wanted is not None else None
    if refused:
        code, message = refused
        answer = envelope({"avid": avid.code, "bytes": info.st_size}, code=code, message=message)
        if code == 416:
            answer.headers["Content-Range"] = f"bytes */{info.st_size}"
        return answer
    # FileResponse serves the ranges, If-Range and HEAD; the validators are ours (see above).
    return FileResponse(path, media_type=video_type(path), headers=headers, stat_result=info)


def routes() -> list:
    """The media routes, relative to ``/api``."""
    return [Route("/resource/{avid}/video", video, methods=["GET", "HEAD"]),
            Route("/resource/{avid}/video", delete_video_route, methods=["DELETE"])]
