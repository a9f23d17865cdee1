"""A title's media: removing only the video (metadata, covers and NFO stay)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, ApiState, avid_of, doc, envelope, notify, state
from pipeline.errors import OtherEdition

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


def routes() -> list:
    """The media routes, relative to ``/api``."""
    return [Route("/resource/{avid}/video", delete_video_route, methods=["DELETE"])]
