"""Operations: the live workers, and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from gateway.api.common import bool_param, doc, envelope, state
from gateway.projection import METRICS_KEY, SPEED_KEY
from pipeline import events as ev, jobs as jobstates
from pipeline.broker import queue_lengths
from pipeline.worker_registry import WORKERS_KEY, live_workers, workers_per_queue

SPEED_FRESH_S = 10


async def workers(st, *, include_stale: bool = False) -> list[dict[str, Any]]:
    """The registry's workers (see ``pipeline/worker_registry.py``)."""
    return live_workers((await st.redis.hgetall(WORKERS_KEY)).values(), time.time(),
                        include_stale=include_stale)


@doc(query={"all": "true to include workers silent for more than 30 s"})
async def list_workers(request: Request) -> JSONResponse:
    """Workers that beat in the last 30 s: host, pid, queues, threads, last heartbeat."""
    items = await workers(state(request), include_stale=bool(bool_param(request.query_params, "all")))
    return envelope(items, message=f"{sum(w['alive'] for w in items)} live")


def _line(name: str, value: float, **labels: str) -> str:
    if labels:
        inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                         for k, v in labels.items())
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: queues, jobs, downloads, workers, the library."""
    st = state(request)
    out: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[float, dict[str, str]]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, v, **labels) for v, labels in samples)

    queues = await queue_lengths(st.redis)
    family("nassav_queue_messages", "gauge", "Messages in each Dramatiq queue by state.",
           [(n, {"queue": q, "state": s}) for q, by in queues.items() for s, n in by.items()])
    active = await st.jobs.active()
    by_status: dict[tuple[str, str], int] = {}
    for j in active:
        k = (j.get("status", ""), j.get("kind", ""))
        by_status[k] = by_status.get(k, 0) + 1
    family("nassav_jobs_active", "gauge", "Live jobs by status and kind.",
           [(float(by_status.get((s, k), 0)), {"status": s, "kind": k})
            for s in (jobstates.QUEUED, jobstates.RUNNING) for k in ("download", "metadata")])
    counters = {k: float(v) for k, v in (await st.redis.hgetall(METRICS_KEY)).items()}
    family("nassav_jobs_submitted_total", "counter", "Jobs submitted, by kind.",
           [(v, {"kind": k.split(":", 1)[1]}) for k, v in sorted(counters.items())
            if k.startswith("jobs_submitted:")])
    family("nassav_jobs_finished_total", "counter", "Jobs that ended, by outcome.",
           [(counters.get(f"jobs_finished:{o}", 0.0), {"outcome": o}) for o in jobstates.TERMINAL])
    family("nassav_download_bytes_total", "counter", "Bytes of video downloaded and verified.",
           [(counters.get("download_bytes", 0.0), {})])
    family("nassav_downloads_completed_total", "counter", "Downloads completed.",
           [(counters.get("downloads_completed", 0.0), {})])
    now = time.time()
    speed, stale = 0.0, []
    for job, raw in (await st.redis.hgetall(SPEED_KEY)).items():
        bps, _, ts = raw.partition("|")
        try:
            if now - float(ts) <= SPEED_FRESH_S:
                speed += float(bps)
            else:
                stale.append(job)
        except ValueError:
            stale.append(job)
    if stale:
        await st.redis.hdel(SPEED_KEY, *stale)
    family("nassav_download_speed_bytes_per_second", "gauge",
           "Sum of the current speed of running downloads.", [(speed, {})])
    per_queue = workers_per_queue(await workers(st))
    family("nassav_workers", "gauge", "Live worker processes per queue.",
           [(float(per_queue.get(q, 0)), {"queue": q}) for q in queues])
    family("nassav_events_stream_length", "gauge", "Entries in the event stream.",
           [(float(await st.redis.xlen(ev.STREAM)), {})])
    counts = await run_in_threadpool(st.index.counts)
    family("nassav_library_resources", "gauge", "Resources in the library index.",
           [(float(n), {"status": s}) for s, n in counts.items()])
    return PlainTextResponse("\n".join(out) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")


def routes() -> list[Route]:
    return [Route("/workers", list_workers, methods=["GET"])]
