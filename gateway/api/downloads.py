"""Jobs: submit a download, cancel a job, submit many, and the queue as the old client sees it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import (MAX_BATCH, ApiError, ApiState, RawEndpoint, avid_of, doc, envelope, json_object,
                                state)
from pipeline import jobs as jobstates
from pipeline.blocklist import AvidBlocked
from pipeline.broker import queue_lengths
from pipeline.editions import KNOWN, REGULAR, label
from pipeline.submit import in_library

Outcome = tuple[int, str, dict[str, Any]]
# Editions a user may ask for by suffix (ABC-123-C); CD1… are parts of one title, not editions.
ASKABLE = frozenset(KNOWN.values()) - {REGULAR}

async def submit(st: ApiState, avid_text: object, kind: str, fields: dict[str, str] | None = None, *,
                 refresh: bool = False) -> Outcome:
    """Claim and queue one AVID; the (HTTP code, message, data) the API answers for it.
    A title the library holds is refused (409, :func:`pipeline.submit.in_library`) unless
    ``refresh`` asks to fetch it again."""
    avid = avid_of(avid_text)
    if avid.edition in ASKABLE and kind != "upgrade":
        # ABC-123-C asks for that edition: resolve takes it, or fails (actors/stages.py).
        fields = {**(fields or {}), "edition": avid.edition}
    held = None if refresh else in_library(st.store, avid, kind)
    if held and avid.edition in ASKABLE and held.status == "downloaded":
        holds = (st.store.read_meta(avid) or {}).get("edition") or REGULAR
        if holds != avid.edition:
            # One folder holds one edition: say which, and how to get another.
            return 409, (f"{held.message} in the {label(holds)} edition, not {avid.edition}; POST "
                         f"/api/resource/{avid.code}/upgrade looks for a preferred one (download.editions), "
                         f"or delete its video first"), \
                {"avid": avid.code, "status": held.status, "edition": label(holds)}
    if held:
        return 409, held.message + (f"; {held.hint}" if held.hint else ""), {"avid": avid.code, "status": held.status}
    try:
        res = await st.submit(avid.code, kind, fields)
    except AvidBlocked as e:
        raise ApiError(403, str(e), {"avid": avid.code, "status": "blocked", "reason": e.reason}) from None
    if not res.accepted:
        return 409, f"{avid.code} already has a job in progress ({res.job_id})", \
            {"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id, "status": "exists"}
    return 202, f"{avid.code} queued", {"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id,
                                         "status": jobstates.QUEUED, "kind": kind}


async def cancel(st: ApiState, avid_text: object) -> Outcome:
    """Cancel the AVID's live job: at once when still queued, else at the worker's next check."""
    avid = avid_of(avid_text)
    message = "cancelled before it started"
    res = await st.jobs.cancel(avid.code, message)
    data = {"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id}
    if res.outcome == jobstates.CANCELLED_NOW:
        return 200, f"{avid.code}: {message}", {**data, "status": jobstates.CANCELLED}
    if res.outcome == jobstates.CANCELLING:
        return 202, f"{avid.code}: cancelling (the worker stops it within a few seconds)", \
            {**data, "status": "cancelling", "was": res.detail}
    if res.outcome == jobstates.ENDED:
        return 409, f"{avid.code}: the job already ended ({res.detail})", {**data, "status": res.detail}
    raise ApiError(404, f"{avid.code} has no job in progress")


def avid_list(body: dict[str, Any], key: str = "avids") -> list[Any]:
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise ApiError(400, f"{key} must be a non-empty list of AVIDs")
    if len(items) > MAX_BATCH:
        raise ApiError(400, f"at most {MAX_BATCH} AVIDs per request (got {len(items)})")
    return items


async def each(fn, items: list[Any]) -> list[dict[str, Any]]:
    """Run ``await fn(item)`` per item; a refusal becomes that item's result, not the batch's."""
    out = []
    for item in items:
        try:
            code, message, data = await fn(item)
        except ApiError as e:
            code, message, data = e.code, e.message, e.data
        out.append({"avid": item if isinstance(item, str) else repr(item), "code": code,
                    "message": message, "data": data})
    return out


def batch_answer(results: list[dict[str, Any]]) -> JSONResponse:
    accepted = sum(1 for r in results if r["code"] in (200, 202))
    return envelope({"results": results, "accepted": accepted, "refused": len(results) - accepted},
                    code=202, message=f"{accepted} of {len(results)} accepted")


# -- routes -------------------------------------------------------------------------------

@RawEndpoint  # the hot path of issue 13: a duplicate submit costs little more than a minimal route
@doc(responses={202: "queued (data.job_id)", 400: "not an AVID", 403: "the AVID is on the blocklist",
                409: "already downloaded or a job holds it"})
async def submit_download(st: ApiState, params: dict[str, Any]) -> Outcome:
    """Queue the missing stages of an AVID, then its download."""
    return await submit(st, params["avid"], "download")


@doc(responses={200: "a queued job was cancelled", 202: "a running job will stop shortly",
                404: "no job in progress"})
async def cancel_download(request: Request) -> JSONResponse:
    """Cancel the AVID's job in progress."""
    code, message, data = await cancel(state(request), request.path_params["avid"])
    return envelope(data, code=code, message=message)


@doc(body={"avids": "list of AVIDs (at most 500)"}, responses={202: "one result per AVID"})
async def batch_submit(request: Request) -> JSONResponse:
    """Queue downloads for many AVIDs; each gets its own result."""
    st = state(request)
    items = avid_list(await json_object(request))
    return batch_answer(await each(lambda a: submit(st, a, "download"), items))


async def queue_status(request: Request) -> JSONResponse:
    """Active and pending jobs (the old client's shape) plus the Dramatiq queue lengths."""
    st = state(request)
    data = await st.queue_status()
    data["queues"] = await queue_lengths(st.redis)
    return envelope(data)


def first_routes(prefix: str = "/api") -> list[Route]:
    """The two submit routes again under their full path, for the top of the app's route list:
    a submit is matched first, not after every other route and the ``/api`` mount (issue 13).
    Hidden from the OpenAPI document, which lists the mount's."""
    return [Route(prefix + "/downloads/batch_submit", batch_submit, methods=["POST"], include_in_schema=False),
            Route(prefix + "/downloads/{avid}", submit_download, methods=["POST"], include_in_schema=False)]


def routes() -> list[Route]:
    return [
        Route("/downloads/batch_submit", batch_submit, methods=["POST"]),
        Route("/downloads/{avid}", submit_download, methods=["POST"]),
        Route("/downloads/{avid}", cancel_download, methods=["DELETE"]),
        Route("/tasks/queue/status", queue_status, methods=["GET"]),
    ]
