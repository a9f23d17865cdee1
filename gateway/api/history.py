"""A title's history: the jobs that worked on it (``gateway/attempts.py``), newest first."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import MAX_PAGE_SIZE, avid_of, doc, int_param, paginated, state


@doc(query={"page": "1…", "page_size": f"1…{MAX_PAGE_SIZE} (default 20)"},
     responses={200: "items {job_id, avid, kind, started_at, ended_at, status, stage, message, source}; "
                     "an AVID never tried has none"})
async def attempts(request: Request) -> JSONResponse:
    """Every job that worked on the AVID, newest first: kind, times, outcome, last stage, message."""
    avid = avid_of(request.path_params["avid"])
    p = request.query_params
    page = int_param(p, "page", 1, lo=1, hi=1_000_000)
    page_size = int_param(p, "page_size", 20, lo=1, hi=MAX_PAGE_SIZE)
    items, total = await run_in_threadpool(state(request).index.attempts, avid.code, page=page,
                                           page_size=page_size)
    return paginated(items, total=total, page=page, page_size=page_size)


def routes() -> list:
    """The history routes, relative to ``/api``."""
    return [Route("/resource/{avid}/attempts", attempts, methods=["GET"])]
