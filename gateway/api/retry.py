"""Retry: run an AVID's latest failed job again, from the stage where it failed.

The new job goes through the normal submit (claim, blocklist, ``queued`` event) with the
failed job's kind, and its first message goes to the failed stage instead of ``resolve``;
the stages before it already left their results in the AVID's folder. The failed job is
found in the index's history (``gateway/attempts.py``), which outlives the job records.
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

# Stage names an event may carry that are parts of a chain stage.
_PART_OF = {"download-wait": "download", "re-resolve": "download"}


def retry_stage(failed_at: str, stages: list[str]) -> str:
    """The chain stage to run again for a job that failed at ``failed_at``: that stage, the
    stage it is part of, or the first one (a job that failed before any stage ran)."""
    stage = _PART_OF.get(failed_at, failed_at)
    return stage if stage in stages else stages[0]


@doc(responses={202: "queued again: data {avid, job_id, retry_of, stage}",
                400: "not an AVID, its latest job did not fail, or it was an import (run the import again)", 403: "the AVID is on the blocklist",
                404: "the AVID has no job in its history", 409: "a job holds the AVID"})
async def retry(request: Request) -> JSONResponse:
    """Re-run the AVID's latest failed job from its failed stage."""
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
    if last["status"] != jobstates.FAILED:
        raise ApiError(400, f"the latest job of {avid.code} ({last['job_id']}) is {last['status']}, not failed; "
                            f"only a failed job is retried (submit a new one with POST /api/downloads/{avid.code})",
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
    fields = {"retry_of": last["job_id"], "start_stage": stage}
    edition = await run_in_threadpool(asked_edition, st.index, avid.code, last["job_id"])
    if edition:
        fields["edition"] = edition  # the failed job asked for one edition (ABC-123-C): so does its retry
    try:
        res = await st.submit(avid.code, kind, fields, first=stage)
    except AvidBlocked as e:
        raise ApiError(403, str(e), {"avid": avid.code, "status": "blocked", "reason": e.reason}) from None
    if not res.accepted:
        raise ApiError(409, f"{avid.code} already has a job in progress ({res.job_id})",
                       {"avid": avid.code, "job_id": res.job_id})
    with logs.context(avid=avid.code, job=res.job_id[:8], stage=stage):
        log.info("retry of %s queued from %s", last["job_id"][:8], stage)
    return envelope({"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id, "retry_of": last["job_id"],
                     "stage": stage, "kind": kind, "status": jobstates.QUEUED},
                    code=202, message=f"{avid.code} queued again from {stage}")


def asked_edition(index, code: str, job_id: str) -> str:
    """The edition a job asked for (its ``queued`` event's ``edition``, in the history); "" for none."""
    items, _ = index.history(code, page=1, page_size=5)
    for item in items:
        if item["job_id"] == job_id:
            queued = next((s for s in item["stages"] if s["stage"] == "queued"), {})
            return str((queued.get("detail") or {}).get("edition") or "")
    return ""


def routes() -> list[Route]:
    """The retry route, relative to ``/api``."""
    return [Route("/resource/{avid}/retry", retry, methods=["POST"])]
