"""The older client generation's calls (the old README's endpoint table) that v1.3.2 dropped.

``GET /resource/list`` (every title, unpaged), ``POST /resource/refresh`` (the AVID in the
body) and ``GET /downloads/list`` (the AVIDs with a video). The
rest of that table (``/source/list``, ``/source/cookie``, ``/resource/cover``, ``POST
/resource``) is v1.3.2's call of the same path, whose answer carries both generations' fields.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import doc, envelope, json_object, paginated, state
import gateway.compat.adding as adding
import gateway.compat.shapes as shapes
from gateway.index import Query

# The old list had no paging; a library larger than this is cut, and ``pagination.total``
# says by how much (an unbounded answer was one of the old server's holes).
MAX_LIST = 10_000


async def _rows(request: Request, status: str) -> tuple[list[dict], int]:
    st = state(request)
    return await run_in_threadpool(st.index.list, Query(status=status, sort_by="avid", order="asc",
                                                        page_size=MAX_LIST))


@doc(responses={200: f"data: [{{avid, title, source, release_date, has_video}}] (at most {MAX_LIST})"})
async def resource_list(request: Request) -> JSONResponse:
    """Every title in the library, A to Z (the older client's list)."""
    rows, total = await _rows(request, "all")
    return paginated([shapes.list_item(r) for r in rows], total=total, page=1, page_size=MAX_LIST)


@doc(responses={200: f"data: the AVIDs that have a video, A to Z (at most {MAX_LIST})"})
async def downloads_list(request: Request) -> JSONResponse:
    """The AVIDs whose video is in the library."""
    rows, total = await _rows(request, "downloaded")
    return paginated([r["avid"] for r in rows], total=total, page=1, page_size=MAX_LIST)


@doc(body={"avid": "the AVID"}, responses={200: "refreshed (both generations' fields)", 404: "not in the library"})
async def refresh_by_body(request: Request) -> JSONResponse:
    """Refresh a title named in the body: its playlist and metadata, answered when done."""
    st = state(request)
    body = await json_object(request)
    return await adding.settle(st, await adding.start_refresh(st, body.get("avid"), {}))


def routes() -> list[Route]:
    """The older generation's own paths, relative to ``/nassav/api`` (its ``/downloads/metadata``
    is v1.3.2's ``/resource/metadata`` under another name: ``library.routes()`` serves both)."""
    return [
        Route("/resource/list", resource_list, methods=["GET"]),
        Route("/resource/refresh", refresh_by_body, methods=["POST"]),
        Route("/downloads/list", downloads_list, methods=["GET"]),
    ]
