"""Add and refresh as the old client expects them, and its batch of library actions.

The old server scraped inside the request and answered with the outcome (201 with what it
saved, 404/403/502 when no source had the title). nassav scrapes in workers; here the request
queues the metadata job and then waits a bounded time for it (``ADD_WAIT_S``, under the
client's 30 s timeout), answering as the old server did once the job is done. A job still
running at the deadline gets 202 with what is known so far, and the task events carry the
rest; with no metadata worker alive nothing is waited for. See docs/compat.md.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api import downloads, media, resources as resources_api
from gateway.api.common import MAX_BATCH, ApiError, avid_of, doc, envelope, json_object, state
import gateway.compat.shapes as shapes
from gateway.relay import TIMEOUT, QueueSubscriber
from pipeline import jobs as jobstates
from pipeline.avid import Avid
from pipeline.broker import METADATA_QUEUE
from pipeline.worker_registry import WORKERS_KEY, live_workers, workers_per_queue

ADD_WAIT_S = 20.0  # one add or refresh; the client gives up after 30 s
BATCH_WAIT_S = 12.0  # a batch, for all its jobs together; the client allows at least 15 s + 4 s per item
REFRESH_PARTS = ("m3u8", "metadata")  # what a refresh may fetch again (the job's ``refresh`` field)

Result = tuple[int, str, dict[str, Any]]


@dataclass
class Pending:
    """A queued job and how to answer once it is done (or the wait is over)."""

    job_id: str
    answer: Callable[[dict[str, str] | None], Awaitable[Result]]


def video_bytes(st, avid: Avid) -> int | None:
    """The size of the title's video (all its parts); None when it has none."""
    try:
        size = sum(p.stat().st_size for p in st.store.videos(avid))
    except OSError:
        return None
    return size or None


def _done(job: dict[str, str] | None) -> bool:
    """The job's metadata part is over: it ended, or it went on to download."""
    return job is None or job.get("status") in jobstates.TERMINAL or job.get("stage") == "download"


async def _metadata_worker_alive(st) -> bool:
    records = (await st.redis.hgetall(WORKERS_KEY)).values()
    return workers_per_queue(live_workers(records, time.time())).get(METADATA_QUEUE, 0) > 0


async def wait_jobs(st, job_ids: list[str], timeout_s: float) -> dict[str, dict[str, str] | None]:
    """Each job's record once its metadata part is done, or as it is at the deadline.

    Woken by the relay's events of these jobs (a poll each second covers a missed one); no
    wait at all when no metadata worker is alive."""
    if not job_ids:
        return {}
    if not await _metadata_worker_alive(st):
        timeout_s = 0.0
    sub = st.relay.subscribe(QueueSubscriber())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        jobs = {j: await st.jobs.get(j) for j in job_ids}
        while True:
            pending = {j for j, rec in jobs.items() if not _done(rec)}
            left = deadline - loop.time()
            if not pending or left <= 0:
                return jobs
            got = await sub.get(min(left, 1.0))
            if got is None:  # the subscription ended (relay stopping, too slow): poll
                await asyncio.sleep(min(left, 0.5))
            elif got is not TIMEOUT and not any(e.job_id in pending for e in got.events):
                continue
            for j in pending:
                jobs[j] = await st.jobs.get(j)
    finally:
        st.relay.unsubscribe(sub)


async def _outcome(st, avid: Avid) -> dict[str, Any]:
    """What an add saved, as the old answers name it."""
    meta = await run_in_threadpool(st.store.read_meta, avid)
    meta = meta if isinstance(meta, dict) else {}
    res = shapes.resource(avid.code, meta)
    return {"resource": res, **res, "cover_downloaded": st.store.cover(avid).exists(),
            "metadata_saved": bool(meta), "scraped": bool(meta.get("catalogue")), "html_saved": False}


def _finished(job: dict[str, str] | None, avid: Avid, job_id: str) -> Result | None:
    """The answer for a job that failed or was cancelled; None when it succeeded or still runs."""
    if job is None or job.get("status") not in (jobstates.FAILED, jobstates.CANCELLED):
        return None
    message = job.get("message") or job.get("status", "")
    code = shapes.failure_code(message) if job.get("status") == jobstates.FAILED else 409
    return code, f"{avid.code}: {message}", {"avid": avid.code, "task_id": job_id, "status": job.get("status")}


# -- add --------------------------------------------------------------------------------------

def _source_name(st, value: object) -> str:
    """``any`` or a configured source, in any case (the client sends names lower-cased)."""
    if value in (None, "", "any"):
        return "any"
    names = {n.lower(): n for n in st.config.sources}
    if not isinstance(value, str) or value.lower() not in names:
        raise ApiError(400, f"source must be \"any\" or one of {', '.join(st.config.sources)}",
                       {"available_sources": list(st.config.sources)})
    return names[value.lower()]


async def start_add(st, avid_text: object, source: object) -> Result | Pending:
    """An add's answer when it is known at once (exists, refused), else its queued job."""
    avid = avid_of(avid_text)
    name = _source_name(st, source)
    if isinstance(await run_in_threadpool(st.store.read_meta, avid), dict):
        return 409, f"{avid.code} already exists", await _outcome(st, avid)
    code, message, data = await resources_api.add(st, avid.full, name)
    if not data.get("job_id"):
        return code, message, {**await _outcome(st, avid), **data}

    async def answer(job: dict[str, str] | None) -> Result:
        failed = _finished(job, avid, data["job_id"])
        if failed:
            return failed
        out = {**await _outcome(st, avid), "task_id": data["job_id"]}
        if _done(job):
            return 201, "created", out
        return 202, f"{avid.code} queued; its metadata is still being fetched (the task events tell the rest)", out
    return Pending(data["job_id"], answer)


@doc(body={"avid": "the AVID", "source": "\"any\" (default) or a source name, any case"},
     responses={201: "added: data.resource, cover_downloaded, metadata_saved, scraped",
                202: "still fetching after the wait", 409: "already in the library (data.resource)",
                404: "no source has it", 403: "a source blocked us", 502: "the sources failed otherwise"})
async def add(request: Request) -> JSONResponse:
    """Add a title: resolve, scrape and cover in a worker, answered when done (bounded wait)."""
    st = state(request)
    body = await json_object(request)
    return await settle(st, await start_add(st, body.get("avid"), body.get("source")))


async def settle(st, started: Result | Pending, wait_s: float = ADD_WAIT_S) -> JSONResponse:
    """The answer, after waiting for the job when there is one."""
    if isinstance(started, Pending):
        jobs = await wait_jobs(st, [started.job_id], wait_s)
        started = await started.answer(jobs[started.job_id])
    code, message, data = started
    return envelope(data, code=code, message=message)


# -- refresh ----------------------------------------------------------------------------------

def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    v = body.get(name, default)
    if not isinstance(v, bool):
        raise ApiError(400, f"{name} must be true or false")
    return v


async def start_refresh(st, avid_text: object, body: dict[str, Any]) -> Result | Pending:
    """A refresh's answer when known at once, else its queued job. ``refresh_m3u8`` (default
    true) resolves the playlist again; ``refresh_metadata`` (default true) scrapes the catalogue
    and fetches the cover again; ``retranslate`` asks the configured translator again, which
    takes a metadata refresh (the translation is the scrape stage's last step)."""
    avid = avid_of(avid_text)
    parts = [p for p, default in zip(REFRESH_PARTS, (True, True)) if _flag(body, f"refresh_{p}", default)]
    retranslate = _flag(body, "retranslate", False)
    before = await run_in_threadpool(st.store.read_meta, avid)
    if not isinstance(before, dict):
        raise ApiError(404, f"{avid.code} is not in the library; add it first (POST /nassav/api/resource)")
    translator = st.config.translation.enabled
    if retranslate and not parts and not translator:
        raise ApiError(501, "no title translator is configured (translation.url and translation.model): "
                            "retranslate alone refreshes nothing; refresh_m3u8 or refresh_metadata fetch again")
    if retranslate and translator and "metadata" not in parts:
        parts.append("metadata")

    async def answer(job: dict[str, str] | None, job_id: str = "") -> Result:
        failed = _finished(job, avid, job_id)
        if failed:
            return failed
        out = await _refreshed(st, avid, before, parts)
        if retranslate:
            out["translation_queued"] = translator
        if job_id:
            out["task_id"] = job_id
        if _done(job):
            return 200, "refreshed", out
        return 202, f"{avid.code} refresh queued; still fetching (the task events tell the rest)", out
    if not parts:
        return await answer(None)
    source = ((before.get("source") or {}) if isinstance(before.get("source"), dict) else {}).get("name", "")
    fields = {"refresh": ",".join(parts), **({"source_pref": source} if source in st.config.sources else {})}
    code, message, data = await downloads.submit(st, avid.full, "metadata", fields, refresh=True)
    job_id = data["job_id"]  # 409: a job already holds the title; its outcome answers this too
    return Pending(job_id, lambda job: answer(job, job_id))


async def _refreshed(st, avid: Avid, before: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    out = await _outcome(st, avid)
    meta = await run_in_threadpool(st.store.read_meta, avid)
    meta = meta if isinstance(meta, dict) else {}
    row = await resources_api.indexed(st, avid)
    size = video_bytes(st, avid)
    playlist = lambda m: (m.get("source") or {}).get("playlist_url") if isinstance(m.get("source"), dict) else None  # noqa: E731
    out.update({"resource": shapes.full_resource(avid.code, meta, video_bytes=size, user=row),
                "metadata_refreshed": "metadata" in parts, "m3u8_refreshed": "m3u8" in parts,
                "m3u8_updated": playlist(meta) != playlist(before)})
    return out


@doc(body={"refresh_m3u8": "true (default) | false", "refresh_metadata": "true (default) | false",
           "retranslate": "false (default); true asks the configured translator again (with the metadata)"},
     responses={200: "refreshed: data.resource and the flags", 202: "still fetching after the wait",
                404: "not in the library", 501: "retranslate alone, no translator configured"})
async def refresh(request: Request) -> JSONResponse:
    """Fetch a title's playlist and/or metadata again, answered when done (bounded wait)."""
    st = state(request)
    body = await json_object(request)
    return await settle(st, await start_refresh(st, request.path_params["avid"], body))


# -- batch ------------------------------------------------------------------------------------

ACTIONS = ("add", "refresh", "delete-video", "delete-all", "delete")


async def _start(st, act: dict[str, Any]) -> Result | Pending:
    action, avid = act.get("action"), act.get("avid")
    if action == "add":
        known = await _existing(st, avid)
        return known if known[0] else await start_add(st, avid, act.get("source"))
    if action == "refresh":
        return await start_refresh(st, avid, act)
    if action == "delete-video":
        target = avid_of(avid)
        size = video_bytes(st, target)
        name = st.store.video(target).name  # before it goes
        # The old client's batch delete-video deletes, in-place originals too (its contract).
        code, message, data = await media.delete_video(st, await held_edition(st, avid), originals=True)
        return code, message, {**data, "deleted_file": name, "file_size": size}
    if action in ("delete-all", "delete"):
        target = avid_of(avid)
        meta = await run_in_threadpool(st.store.read_meta, target)
        code, message, data = await resources_api.delete(st, await held_edition(st, avid))
        return code, message, {**data, "resource": shapes.resource(target.code, meta) if isinstance(meta, dict) else None}
    raise ApiError(400, f"action must be one of {', '.join(ACTIONS)}")


async def held_edition(st, avid_text: object) -> str:
    """The AVID a delete acts on. The old client names titles by code only, while a folder
    holds one edition (the one resolve chose, or an upgrade's): a plain code means whatever
    edition the folder holds. nassav's own API asks for the exact edition instead."""
    avid = avid_of(avid_text)
    if avid.edition:
        return avid.full
    held = await run_in_threadpool(st.store.held, avid)
    return held.full if held else avid.code


async def _existing(st, avid_text: object) -> Result:
    """A batch add of a title already in the library: 200 "already exists", as the old server
    answered (the client counts it as existing, not failed); ``(0, …)`` otherwise."""
    avid = avid_of(avid_text)
    if isinstance(await run_in_threadpool(st.store.read_meta, avid), dict):
        return 200, "already exists", await _outcome(st, avid)
    return 0, "", {}


def _status(actions: list[Any], results: list[dict[str, Any]]) -> tuple[int, str]:
    """The batch's HTTP status. A batch of adds is 200: the client reads each item's code. Any
    other batch is 200 only when every action succeeded; else the highest failing code, so the
    client (which reads only the status for deletes and refreshes) never toasts a failure as done."""
    failed = [r for r in results if r["code"] >= 400]
    if not failed or all(isinstance(a, dict) and a.get("action") == "add" for a in actions):
        return 200, f"{len(results) - len(failed)} of {len(results)} done"
    lines = "; ".join(f"{r['avid']}: {r['message']}" for r in failed[:5])
    return max(r["code"] for r in failed), f"{len(failed)} of {len(results)} failed: {lines}"


@doc(body={"actions": f"[{{action, avid, …}}] (at most {MAX_BATCH}); action: {' | '.join(ACTIONS)}"},
     responses={200: "data.results: one {action, avid, code, message, resource, …} per action",
                400: "not a list of actions", 404: "a delete found nothing (data.results says which)"})
async def batch(request: Request) -> JSONResponse:
    """Many library actions; adds and refreshes wait for their jobs together (bounded)."""
    st = state(request)
    actions = downloads.avid_list(await json_object(request), "actions")
    started: list[Result | Pending] = []
    for act in actions:
        try:
            if not isinstance(act, dict):
                raise ApiError(400, "each action must be an object {action, avid, …}")
            started.append(await _start(st, act))
        except ApiError as e:
            started.append((e.code, e.message, e.data or {}))
    jobs = await wait_jobs(st, [s.job_id for s in started if isinstance(s, Pending)], BATCH_WAIT_S)
    results = []
    for act, s in zip(actions, started):
        code, message, data = await s.answer(jobs[s.job_id]) if isinstance(s, Pending) else s
        act = act if isinstance(act, dict) else {}
        results.append({"resource": None, **data, "action": act.get("action"),
                        "avid": str(act.get("avid") or "").upper() or None, "code": code, "message": message})
    code, message = _status(actions, results)
    return envelope({"results": results}, code=code, message=message)


def routes() -> list[Route]:
    """Add, refresh and the batch, relative to ``/nassav/api``."""
    return [
        Route("/resource", add, methods=["POST"]),
        Route("/resource/", add, methods=["POST"], include_in_schema=False),
        Route("/resource/refresh/{avid}", refresh, methods=["POST"]),
        Route("/resources/batch", batch, methods=["POST"]),
    ]
