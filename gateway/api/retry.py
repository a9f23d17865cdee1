"""Retry: run an AVID's latest failed or cancelled job again, from the stage where it stopped.

The new job goes through the normal submit (claim, blocklist, ``queued`` event) with the
old job's kind and the options it was asked with (:data:`REPEATED`: a refresh's parts, the
preferred source, an asked edition), and its first message goes to the stage where the old
job stopped instead of ``resolve``; the stages before it already left their results in the
AVID's folder. A cancelled job may be retried too: a user who cancelled and wants the title
after all gets the same job back, through the same submit path (a job holding the claim
still answers 409). The old job is found in the index's history (``gateway/attempts.py``),
which outlives the job records; its options are those its ``queued`` event recorded.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, avid_of, doc, envelope, state
from pipeline import jobs as jobstates, logs
from pipeline.blocklist import AvidBlocked

log = logging.getLogger("nassav.gateway")

# The job options a retry asks again (a subset of pipeline.jobs.ASKED_FIELDS, which the queued
# event records): they change what the stages do. Not retry_of/start_stage (the retry sets its
# own), not subscription/import_id (a retry is the user's, not the subscription's or import's).
REPEATED = ("refresh", "source_pref", "edition")
RETRIABLE = (jobstates.FAILED, jobstates.CANCELLED)

# Stage names an event may carry that are parts of a chain stage.
_PART_OF = {"download-wait": "download", "re-resolve": "download"}


def retry_stage(failed_at: str, stages: list[str]) -> str:
    """The chain stage to run again for a job that failed at ``failed_at``: that stage, the
    stage it is part of, or the first one (a job that failed before any stage ran)."""
    stage = _PART_OF.get(failed_at, failed_at)
    return stage if stage in stages else stages[0]


@doc(responses={202: "queued again: data {avid, job_id, retry_of, stage, kind, options}",
                400: "not an AVID, its latest job neither failed nor was cancelled, or it was an import "
                     "(run the import again)", 403: "the AVID is on the blocklist",
                404: "the AVID has no job in its history", 409: "a job holds the AVID"})
async def retry(request: Request) -> JSONResponse:
    """Re-run the AVID's latest failed or cancelled job, with the options it was asked with,
    from the stage where it stopped."""
    from actors.registry import CHAIN  # the stage names; the gateway only sends messages

    st = state(request)
    avid = avid_of(request.path_params["avid"])
    live = await st.jobs.live_job(avid.code)
    if live:
        raise ApiError(409, f"{avid.code} already has a job in progress ({live}); wait for it or cancel "
                            f"it with DELETE /api/downloads/{avid.code}", {"avid": avid.code, "job_id": live})
    items, _ = await run_in_threadpool(st.index.attempts, avid.code, page=1, page_size=1)
    if not items:
        raise ApiError(404, f"{avid.code} has no job in its history; submit it with POST /api/downloads/{avid.code}")
    last = items[0]
    if last["status"] not in RETRIABLE:
        raise ApiError(400, f"the latest job of {avid.code} ({last['job_id']}) is {last['status']}; "
                            f"only a failed or cancelled job is retried "
                            f"(submit a new one with POST /api/downloads/{avid.code})",
                       {"avid": avid.code, "job_id": last["job_id"], "status": last["status"]})
    stage = retry_stage(last["stage"], CHAIN.names())
    kind = last["kind"] or "download"
    if kind not in CHAIN.last:
        # An import's title job is no chain of stages: the import run places the files, and
        # sending it to resolve would make a metadata job that never imports anything.
        raise ApiError(400, f"the latest job of {avid.code} ({last['job_id']}) was an {kind} and is not retried "
                            f"stage by stage; run the import again (nassav import PATH, or POST /api/library/import): "
                            f"it resumes and says why a file stays",
                       {"avid": avid.code, "job_id": last["job_id"], "kind": kind})
    # What the old job was asked (a refresh's parts, a preferred source, ABC-123-C's edition):
    # the retry asks the same, else a retried refresh would be a plain add.
    options = await run_in_threadpool(asked_options, st.index, avid.code, last["job_id"])
    fields = {**options, "retry_of": last["job_id"], "start_stage": stage}
    try:
        res = await st.submit(avid.code, kind, fields, first=stage)
    except AvidBlocked as e:
        raise ApiError(403, str(e), {"avid": avid.code, "status": "blocked", "reason": e.reason}) from None
    if not res.accepted:
        raise ApiError(409, f"{avid.code} already has a job in progress ({res.job_id})",
                       {"avid": avid.code, "job_id": res.job_id})
    with logs.context(avid=avid.code, job=res.job_id[:8], stage=stage):
        log.info("retry of %s (%s) queued from %s", last["job_id"][:8], last["status"], stage)
    return envelope({"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id, "retry_of": last["job_id"],
                     "stage": stage, "kind": kind, "options": options, "status": jobstates.QUEUED},
                    code=202, message=f"{avid.code} queued again from {stage}")


def asked_options(index, code: str, job_id: str) -> dict[str, str]:
    """The :data:`REPEATED` options a job was asked with (its ``queued`` event's detail, in the
    history), those it had only; empty for none."""
    items, _ = index.history(code, page=1, page_size=5)
    for item in items:
        if item["job_id"] == job_id:
            queued = next((s for s in item["stages"] if s["stage"] == "queued"), {})
            detail = queued.get("detail") or {}
            return {k: str(detail[k]) for k in REPEATED if detail.get(k)}
    return {}


def routes() -> list[Route]:
    """The retry route, relative to ``/api``."""
    return [Route("/resource/{avid}/retry", retry, methods=["POST"])]
