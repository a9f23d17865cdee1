"""The old client's download calls, its queue, and its task WebSocket (``/nassav/ws/tasks/``).

A thin translation over nassav's own job calls (``gateway/api/downloads.py``): the same
claim, job and stage chain, answered in the old shapes. The socket is ``task_socket.py``;
the queue and message shapes are ``messages.py``. ``docs/compat.md`` lists every call.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.websockets import WebSocket

from gateway.api import downloads as downloads_api
from gateway.api.common import ApiError, ApiState, doc, envelope, json_object, state
from gateway.compat.task_socket import queue_status_of, serve_old_tasks
from pipeline.avid import parse

Outcome = tuple[int, str, dict[str, Any] | None]


async def submit(st: ApiState, avid_text: object) -> Outcome:
    """Queue a download as the old server answered it: 202 ``{avid, task_id, status: "pending",
    file_size: null}``; 409 ``{…, status: "completed", file_size}`` when the video is there."""
    code, message, data = await downloads_api.submit(st, avid_text, "download")
    avid = data["avid"]
    if code == 202:
        return code, message, {"avid": avid, "task_id": data["task_id"], "status": "pending", "file_size": None}
    if data.get("status") == "downloaded":
        return code, message, {"avid": avid, "task_id": None, "status": "completed",
                               "file_size": _video_bytes(st, avid)}
    return code, message, {"avid": avid, "task_id": data.get("task_id"), "status": "exists", "file_size": None}


def _video_bytes(st: ApiState, avid: str) -> int | None:
    try:
        return sum(p.stat().st_size for p in st.store.videos(parse(avid))) or None
    except OSError:  # deleted in between: the answer is still "downloaded"
        return None


def _body_avid(body: dict[str, Any]) -> object:
    if "avid" not in body:
        raise ApiError(400, 'send the AVID in a JSON body: {"avid": "ABC-123"}')
    return body["avid"]


# -- routes -------------------------------------------------------------------------------

@doc(responses={202: "queued: data {avid, task_id, status: pending, file_size: null}",
                409: "already downloaded (status completed, file_size) or a job holds it"})
async def submit_download(request: Request) -> JSONResponse:
    """Queue a download (the old client's call; metadata missing is fetched first)."""
    code, message, data = await submit(state(request), request.path_params["avid"])
    return envelope(data, code=code, message=message)


@doc(body={"avid": "the AVID"}, responses={202: "queued", 409: "already downloaded or a job holds it"})
async def submit_download_body(request: Request) -> JSONResponse:
    """Queue a download, the AVID in the body (the older client generation's call)."""
    code, message, data = await submit(state(request), _body_avid(await json_object(request)))
    return envelope(data, code=code, message=message)


@doc(body={"avids": "list of AVIDs (at most 500)"},
     responses={200: "data.results: one {avid, code, message, task_id} per AVID"})
async def batch_submit(request: Request) -> JSONResponse:
    """Queue downloads for many AVIDs; each gets its own result (the old client's call)."""
    st = state(request)
    items = downloads_api.avid_list(await json_object(request))
    results = [{"avid": (r["data"] or {}).get("avid") or r["avid"], "code": r["code"], "message": r["message"],
                "task_id": (r["data"] or {}).get("task_id")}
               for r in await downloads_api.each(lambda a: submit(st, a), items)]
    accepted = sum(1 for r in results if r["code"] == 202)
    return envelope({"results": results, "accepted": accepted, "refused": len(results) - accepted},
                    message=f"{accepted} of {len(results)} accepted")


async def queue_status(request: Request) -> JSONResponse:
    """The download queue as the old client reads it (active with progress, then pending)."""
    return envelope(await queue_status_of(state(request).jobs)())


def routes() -> list[Route]:
    """Task routes relative to ``/nassav/api`` (they win over ``library.routes()``)."""
    return [
        Route("/downloads/batch_submit", batch_submit, methods=["POST"]),
        # The generation before v1.3 sent the AVID in the body, to /downloads (its README)
        # and /downloads/new (its server); "new" is no AVID, so the order here is enough.
        Route("/downloads", submit_download_body, methods=["POST"]),
        Route("/downloads/new", submit_download_body, methods=["POST"]),
        Route("/downloads/{avid}", submit_download, methods=["POST"]),
        Route("/tasks/queue/status", queue_status, methods=["GET"]),
    ]


async def ws_tasks(websocket: WebSocket) -> None:
    """The old client's task WebSocket: the old messages in the old order."""
    st = websocket.app.state.nassav
    await serve_old_tasks(websocket, st.relay, st.jobs, st.redis, st.ws_limit)
