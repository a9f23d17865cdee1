"""A title's history: the jobs that worked on it, newest first, each with what its stages did
(``gateway/attempts.py`` for the jobs, ``gateway/history_stages.py`` for their stages)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import MAX_PAGE_SIZE, avid_of, doc, int_param, paginated, state


@doc(query={"page": "1…", "page_size": f"1…{MAX_PAGE_SIZE} (default 20)"},
     responses={200: "items {job_id, avid, kind, started_at, ended_at, status, stage, message, source, "
                     "stages: [{stage, started_at, ended_at, took_s, outcome, source, message, "
                     "sources: [{source, outcome, detail}], bytes?, video_duration_s?, detail?}]}; "
                     "an AVID never tried has none"})
async def history(request: Request) -> JSONResponse:
    """Every job that worked on the AVID, newest first: what was asked, each stage's outcome
    source by source, bytes and durations, and the final outcome. ``/attempts`` is the same."""
    avid = avid_of(request.path_params["avid"])
    p = request.query_params
    page = int_param(p, "page", 1, lo=1, hi=1_000_000)
    page_size = int_param(p, "page_size", 20, lo=1, hi=MAX_PAGE_SIZE)
    items, total = await run_in_threadpool(state(request).index.history, avid.code, page=page,
                                           page_size=page_size)
    return paginated(items, total=total, page=page, page_size=page_size)


def routes() -> list:
    """The history routes, relative to ``/api``."""
    return [Route("/resource/{avid}/history", history, methods=["GET"]),
            # The first name of this route, kept for the clients that use it.
            Route("/resource/{avid}/attempts", history, methods=["GET"])]
