"""Dramatiq actors for the stages, declared on a broker passed in (no import-time broker).

The stage order is declared once, in :data:`CHAIN`; every actor takes ``(avid, job_id)``, runs
its stage and sends the next one (or completes the job). Dramatiq's ``Retries`` middleware
alone decides retries: a :class:`Retriable` error is raised to it and retried with back-off
while the actor's ``max_retries`` allow; :class:`RetryOutcome` reports each retry as a
warning and fails the job when Retries gives up. Any other error fails the job with its
reason and releases the claim. A stage interrupted by a worker shutdown is sent again at once.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import dramatiq
import redis
from dramatiq.middleware import Middleware, Retries
from dramatiq.threading import Interrupt

from actors import stages
from actors.context import Context
from pipeline import events as ev, jobs as jobstates, logs
from pipeline.avid import Avid, parse
from pipeline.broker import DOWNLOAD_QUEUE, METADATA_QUEUE
from pipeline.config import Config
from pipeline.download_gate import Paused
from pipeline.errors import AllSourcesFailed, Cancelled, InvalidAvid, NassavError, Retriable

log = logging.getLogger("nassav.actors")


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Context, Avid, str], None]
    queue: str


@dataclass(frozen=True)
class Chain:
    """The stages in order, and the last stage of each job kind (a kind not named stops
    where ``metadata`` does); ``skip`` names stages a kind passes over."""

    stages: tuple[Stage, ...]
    last: Mapping[str, str] = field(default_factory=dict)
    skip: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def first(self) -> str:
        return self.stages[0].name

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def next(self, stage: str, kind: str) -> str | None:
        """The stage after ``stage`` for a job of ``kind``; None when the job is done."""
        names = self.names()
        at, last = names.index(stage), names.index(self.last.get(kind) or self.last["metadata"])
        while at < last:
            at += 1
            if names[at] not in self.skip.get(kind, ()):
                return names[at]
        return None

    def run_inline(self, ctx: Context, avid: Avid, job_id: str, kind: str) -> list[str]:
        """Run a job's stages one after another in this thread, without Dramatiq (tests,
        tools): the names of the stages run, in order."""
        ran, stage = [], self.first
        while stage:
            self.stages[self.names().index(stage)].run(ctx, avid, job_id)
            ran.append(stage)
            stage = self.next(stage, kind)
        return ran


CHAIN = Chain(
    stages=(Stage("resolve", stages.resolve, METADATA_QUEUE),
            Stage("scrape", stages.scrape, METADATA_QUEUE),
            Stage("cover", stages.cover, METADATA_QUEUE),
            Stage("download", stages.download, DOWNLOAD_QUEUE)),
    last={"metadata": "cover", "download": "download", "upgrade": "download"},
    # An edition upgrade keeps the catalogue metadata and the cover it has (actors/upgrading.py).
    skip={"upgrade": ("scrape", "cover")},
)
# Retries' back-off between attempts of a stage (dramatiq's min_backoff/max_backoff).
MIN_BACKOFF_MS = 5_000
MAX_BACKOFF_MS = 300_000
# How long a stage that lost Redis waits for it to answer again before giving up.
REDIS_WAIT_S = 120.0
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
# Errors that reach Dramatiq without being worth a retry: a time limit (the job already
# failed), Redis gone for good (nothing could be recorded), a message that is not ours.
NOT_RETRIED = (Interrupt, redis.RedisError, InvalidAvid)
# A full disk (or quota, or file size limit) is the machine's state, not a bug of ours.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass
class Actors:
    by_name: dict[str, dramatiq.Actor]
    first: str = CHAIN.first

    def send(self, stage: str, avid: str, job_id: str) -> None:
        self.by_name[stage].send(avid, job_id)

    def start(self, avid: str, job_id: str) -> None:
        """Send a new job's first stage."""
        self.send(self.first, avid, job_id)


def declare(broker: dramatiq.Broker, config: Config,
            context: Callable[[], Context] | None = None, *, chain: Chain = CHAIN,
            min_backoff_ms: int = MIN_BACKOFF_MS, max_backoff_ms: int = MAX_BACKOFF_MS) -> Actors:
    """Declare the stage actors of ``chain`` on ``broker``; ``context`` is needed only where
    they run. The broker must have dramatiq's ``Retries`` middleware (every default stack has)."""
    actors = Actors({}, first=chain.first)
    w, d = config.workers, config.download
    for stage in chain.stages:
        is_download = stage.queue == DOWNLOAD_QUEUE
        limit_s = d.time_limit_s if is_download else w.stage_time_limit_s
        retries = d.max_retries if is_download else w.stage_max_retries
        actors.by_name[stage.name] = dramatiq.actor(
            _runner(stage, chain, actors, context), broker=broker, actor_name=stage.name,
            queue_name=stage.queue, time_limit=limit_s * 1000, max_retries=retries,
            min_backoff=min_backoff_ms, max_backoff=max_backoff_ms, throws=NOT_RETRIED)
    if not any(isinstance(m, RetryOutcome) for m in broker.middleware):
        # Before Retries in the list: after_* hooks run in reverse, so it hears Retries' decision.
        broker.add_middleware(RetryOutcome(chain.names(), context), before=Retries)
    actors.by_name["refresh_cookie"] = dramatiq.actor(
        _cookie_runner(context), broker=broker, actor_name="refresh_cookie",
        queue_name=METADATA_QUEUE, time_limit=120_000, max_retries=0)
    from actors.importing import declare_import  # nassav import's job (issue 11)

    actors.by_name.update(declare_import(broker, context))
    return actors


class RetryOutcome(Middleware):
    """Tells the job what Retries decided about a stage's :class:`Retriable` error: a retry
    becomes a warning event; a message Retries failed (no retries left) fails the job."""

    def __init__(self, stage_names: list[str], context: Callable[[], Context] | None):
        self.stage_names = set(stage_names)
        self.context = context

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if (not isinstance(exception, Retriable) or message.actor_name not in self.stage_names
                or self.context is None):
            return
        ctx = self.context()
        avid, job_id = message.args
        name = message.actor_name
        with logs.context(avid=avid, job=job_id[:8], stage=name):
            if message.failed:
                _fail(ctx, avid, job_id, name, exception)
                return
            done = message.options.get("retries", 0)
            limit = message.options.get("max_retries", broker.get_actor(name).options.get("max_retries"))
            log.warning("%s failed (%s); retry %d of %s", name, exception, done, limit)
            ctx.events.emit(ev.WARNING, avid=avid, job_id=job_id, stage=name,
                            data={"message": f"{exception}; retrying ({done}/{limit})"})


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


def _runner(stage: Stage, chain: Chain, actors: Actors,
            context: Callable[[], Context] | None) -> Callable[[str, str], None]:
    name = stage.name

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
                stage.run(ctx, avid, job_id)
            except Cancelled as e:
                if ctx.shutdown.is_set():
                    log.info("worker stopping: %s will be resumed", name)
                    actors.send(name, avid.code, job_id)
                    return
                ctx.jobs.finish(job_id, avid.code, jobstates.CANCELLED, message=str(e), stage=name)
                return
            except Paused as e:  # waited its turn (disk, hours): back to the queue, no retry used
                log.info("%s; %s sent again", e, name)
                actors.send(name, avid.code, job_id)
                return
            except Retriable:
                raise  # Retries decides; RetryOutcome tells the job
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
            nxt = chain.next(name, job.get("kind", "download"))
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
        reasons = [str(o) for o in exc.outcomes] + ([exc.hint] if getattr(exc, "hint", "") else [])
    else:
        reasons = [str(exc) or type(exc).__name__]
    message = ("internal error: " if internal else "") + "; ".join(reasons)
    log.error("job failed in %s: %s", stage, message)
    ctx.jobs.finish(job_id, avid, jobstates.FAILED, message=message, stage=stage,
                    data={"reasons": reasons, "error": type(exc).__name__})
