"""Dramatiq actors for the stages, declared on a broker passed in (no import-time broker).

Every actor takes ``(avid, job_id)``. The wrapper here is the only place that decides what
an error means for the job: a :class:`Retriable` error is retried by Dramatiq with back-off
while retries remain; anything else — or the last retry — fails the job with its reason and
releases the claim. A stage interrupted by a worker shutdown is sent again at once.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass
from typing import Callable

import dramatiq
import redis
from dramatiq.middleware import CurrentMessage
from dramatiq.threading import Interrupt

from actors import stages
from actors.context import Context
from pipeline import events as ev, jobs as jobstates, logs
from pipeline.avid import parse
from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE
from pipeline.config import Config
from pipeline.errors import AllSourcesFailed, Cancelled, NassavError, Retriable

log = logging.getLogger("nassav.actors")

STAGES: dict[str, tuple[Callable, str]] = {
    "resolve": (stages.resolve, METADATA_QUEUE),
    "scrape": (stages.scrape, METADATA_QUEUE),
    "cover": (stages.cover, METADATA_QUEUE),
    "download": (stages.download, DOWNLOAD_QUEUE),
}
FIRST_STAGE = "resolve"
# How long a stage that lost Redis waits for it to answer again before giving up.
REDIS_WAIT_S = 120.0
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
# A full disk (or quota, or file size limit) is the machine's state, not a bug of ours.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass
class Actors:
    by_name: dict[str, dramatiq.Actor]

    def send(self, stage: str, avid: str, job_id: str) -> None:
        self.by_name[stage].send(avid, job_id)


def declare(broker: dramatiq.Broker, config: Config,
            context: Callable[[], Context] | None = None) -> Actors:
    """Declare the stage actors on ``broker``; ``context`` is needed only where they run."""
    if not any(isinstance(m, CurrentMessage) for m in broker.middleware):
        broker.add_middleware(CurrentMessage())
    actors = Actors({})
    w, d = config.workers, config.download
    for name, (fn, queue) in STAGES.items():
        is_download = queue == DOWNLOAD_QUEUE
        limit_s = d.time_limit_s if is_download else w.stage_time_limit_s
        retries = d.max_retries if is_download else w.stage_max_retries
        runner = _runner(name, fn, retries, actors, context)
        actors.by_name[name] = dramatiq.actor(
            runner, broker=broker, actor_name=name, queue_name=queue,
            time_limit=limit_s * 1000, max_retries=retries,
            min_backoff=5_000, max_backoff=300_000,
            retry_when=lambda n, exc, _max=retries: isinstance(exc, Retriable) and n < _max)
    actors.by_name["refresh_cookie"] = dramatiq.actor(
        _cookie_runner(context), broker=broker, actor_name="refresh_cookie",
        queue_name=METADATA_QUEUE, time_limit=120_000, max_retries=0)
    return actors


def _cookie_runner(context: Callable[[], Context] | None) -> Callable[[str], None]:
    def refresh_cookie(source: str) -> None:
        """Fetch ``source``'s cookies from its home page and store them (``auto`` in the API)."""
        from pipeline import cookies as cookie_store
        from sources.cookies import fetch_home_cookies

        if context is None:
            raise RuntimeError("this process only sends messages; run it in `nassav worker`")
        ctx = context()
        try:
            got = fetch_home_cookies(source, ctx.config)
        except NassavError as e:
            ctx.events.emit(ev.WARNING, avid="", job_id="", stage="cookie",
                            data={"source": source, "message": f"no cookie fetched: {e}"})
            return
        cookie_store.put(ctx.config.data_path, source, got, merge=True)
        log.info("cookie for %s refreshed from its home page: %s", source, cookie_store.mask(got))
        ctx.events.emit("cookie_updated", avid="", job_id="", stage="cookie",
                        data={"source": source, "cookie": cookie_store.mask(got), "count": len(got)})
    return refresh_cookie


def _runner(name: str, fn: Callable, max_retries: int, actors: Actors,
            context: Callable[[], Context] | None) -> Callable[[str, str], None]:
    def run(avid_code: str, job_id: str) -> None:
        if context is None:
            raise RuntimeError("this process only sends messages; run stages in `nassav worker`")
        ctx = context()
        avid = parse(avid_code)
        job = ctx.jobs.get(job_id)
        if not job or job.get("status") in jobstates.TERMINAL:
            log.info("job %s is gone or finished; skipping %s", job_id, name)
            return
        with logs.context(avid=avid.code, job=job_id[:8], stage=name):
            if job.get("cancel"):
                ctx.jobs.finish(job_id, avid.code, jobstates.CANCELLED, message="cancelled", stage=name)
                return
            try:
                nxt = fn(ctx, avid, job_id)
            except Cancelled as e:
                if ctx.shutdown.is_set():
                    log.info("worker stopping: %s will be resumed", name)
                    actors.send(name, avid.code, job_id)
                    return
                ctx.jobs.finish(job_id, avid.code, jobstates.CANCELLED, message=str(e), stage=name)
                return
            except Retriable as e:
                msg = CurrentMessage.get_current_message()
                done = (msg.options.get("retries", 0) if msg else max_retries)
                if done < max_retries:
                    log.warning("%s failed (%s); retry %d of %d", name, e, done + 1, max_retries)
                    ctx.events.emit(ev.WARNING, avid=avid.code, job_id=job_id, stage=name,
                                    data={"message": f"{e}; retrying ({done + 1}/{max_retries})"})
                    raise
                _fail(ctx, avid.code, job_id, name, e)
                return
            except NassavError as e:
                _fail(ctx, avid.code, job_id, name, e)
                return
            except Interrupt as e:  # time limit
                _fail(ctx, avid.code, job_id, name, e)
                raise
            except _REDIS_DOWN:
                raise  # not the job's fault: see ride_out_redis below
            except Exception as e:
                if isinstance(e, OSError) and e.errno in _DISK_FULL:
                    e = OSError(e.errno, f"disk full: {e.strerror}; free space under "
                                         f"{ctx.config.data_path} and submit again")
                    _fail(ctx, avid.code, job_id, name, e)
                    return
                log.exception("internal error in %s", name)
                _fail(ctx, avid.code, job_id, name, e, internal=True)
                return
            if nxt:
                actors.send(nxt, avid.code, job_id)
            else:
                ctx.jobs.finish(job_id, avid.code, jobstates.COMPLETED, stage=name,
                                message=f"{avid.code} done")

    def ride_out_redis(avid_code: str, job_id: str) -> None:
        """Redis went away mid-stage: failing the job could not even be recorded, and
        Dramatiq would dead-letter the message, leaving the job running with its claim held
        until the sweep noticed. Stages are idempotent, so wait for Redis and send the
        stage again (as a worker shutdown does)."""
        try:
            run(avid_code, job_id)
        except _REDIS_DOWN as e:
            if context is None or not _wait_for_redis(context().redis, REDIS_WAIT_S):
                raise
            log.warning("Redis was unreachable during %s of %s (%s); stage sent again", name, avid_code, e)
            actors.send(name, avid_code, job_id)
    ride_out_redis.__name__ = name
    return ride_out_redis


def _wait_for_redis(client: redis.Redis, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return True
        except redis.RedisError:
            pass
        time.sleep(0.5)
    return False


def _fail(ctx: Context, avid: str, job_id: str, stage: str, exc: BaseException, *,
          internal: bool = False) -> None:
    if isinstance(exc, AllSourcesFailed):
        reasons = [str(o) for o in exc.outcomes]
    else:
        reasons = [str(exc) or type(exc).__name__]
    message = ("internal error: " if internal else "") + "; ".join(reasons)
    log.error("job failed in %s: %s", stage, message)
    ctx.jobs.finish(job_id, avid, jobstates.FAILED, message=message, stage=stage,
                    data={"reasons": reasons, "error": type(exc).__name__})
