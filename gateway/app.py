"""The Starlette gateway: thin routes that validate, claim, append an event and enqueue.

Nothing slow happens in a request: the stages run in the workers. ``create_app(config,
redis_url)`` builds everything explicitly; Redis pools open in the lifespan.

Where things plug in: nassav's own REST API lives in ``gateway/api/`` (one module per family,
each with a ``routes()``), served under ``/api``. ``gateway/compat`` speaks the original NASSAV
client's contract under ``/nassav/api`` and ``/nassav/ws/tasks/``. ``gateway/web`` (the page)
and ``gateway/sse`` (the event stream) define ``extra_routes() -> list``, mounted at the top
level (``/``, ``/api/events``); ``gateway/web`` also lists ``PUBLIC_PATHS`` (the page's static
shell, open when a token is set). The browser guards (``gateway/guards.py``), CORS, the body
limit and auth (``gateway/auth.py``) wrap everything.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from gateway import compat, openapi, sse, web
from gateway.api import downloads as downloads_api, history as history_api, media as media_api, ops as ops_api
from gateway.api import resources as resources_api
from gateway.api import blocklist as blocklist_api, retry as retry_api
from gateway.api import editions as editions_api
from gateway.api import settings as settings_api, sources as sources_api
from gateway.api import notifications as notifications_api, subscriptions as subscriptions_api
from gateway.api import library_import as library_import_api
from gateway.api.common import ApiError, envelope
from gateway.auth import PUBLIC_PATHS, BodyLimit, TokenAuth
from gateway.dashboard import Dashboard
from gateway.guards import Gate, content_type_check, dashboard_check, host_check, origin_check
from gateway.hosts import HostPolicy
from gateway.index import LibraryIndex
from gateway.index_keeper import IndexKeeper
from gateway.projection import Projection
from gateway.ratelimit import FailureWindow
from gateway.redis_pool import PoolExhausted, open_client
from gateway.relay import Relay
from gateway.replication import Replication
from gateway.ws import ClientLimit, serve_tasks
from pipeline import events as ev, jobs as jobstates
from pipeline.blocklist import AvidBlocked
from pipeline.broker import make_broker
from pipeline.config import Config
from pipeline.download_gate import DownloadGate
from pipeline.store import ResourceStore
from pipeline.worker_registry import WORKERS_KEY, live_workers, workers_per_queue

log = logging.getLogger("nassav.gateway")


class State:
    """What the routes share; one per app."""

    def __init__(self, config: Config, redis_url: str):
        self.config = config
        # The config before the data dir's stored overrides (PUT /api/setting works on it).
        self.config_base = config
        self.redis_url = redis_url
        self.store = ResourceStore(config.data_path, file_mode=config.library.file_mode_bits)
        # Why downloads wait (free space, download hours), shown by /health.
        self.download_gate = DownloadGate.from_config(config.download, config.data_path)
        self.index: LibraryIndex | None = None
        self._projection: Projection | None = None
        # gateway.processes > 1: which process keeps the index (gateway/index_keeper.py).
        self.keeper: IndexKeeper | None = None
        self.redis: aioredis.Redis | None = None
        self.relay: Relay | None = None
        self.actors = None
        self.broker = None
        self.jobs: jobstates.AsyncJobs | None = None
        self.replication: Replication | None = None
        self.ws_limit = ClientLimit(config.ws_max_per_client)

    async def open(self) -> None:
        # A blocking pool: under a burst a request waits for a free connection (the default
        # pool failed at 100 in use, a 503 with Redis healthy); see gateway/redis_pool.py.
        self.redis = open_client(self.redis_url, self.config.gateway)
        self.jobs = jobstates.AsyncJobs(self.redis, stream=ev.STREAM, maxlen=self.config.events_maxlen)
        # Sentinel mode: an accepted job is on a replica before the 202 (gateway/replication.py).
        g = self.config.gateway
        self.replication = Replication.for_pool(self.redis, g.redis_wait_replicas, g.redis_wait_timeout_ms)
        # A short timeout: the gateway sends on its event loop (below), so a hung Redis may
        # stall it for at most this long, as the async client's own timeout already allows.
        self.broker = make_broker(self.redis_url, self.config.workers, socket_timeout_s=5.0)
        from actors.registry import declare  # the gateway only sends messages

        self.actors = declare(self.broker, self.config)
        self.relay = Relay(self.redis)
        await self.relay.start()
        if self.config.gateway.processes > 1:
            self.keeper = IndexKeeper(self.redis, self.config.data_path, self.store,
                                      ttl_s=self.config.gateway.index_lease_ttl_s)
            await self.keeper.start()
            self.index = self.keeper.index
            return
        self.index = await run_in_threadpool(LibraryIndex, self.config.data_path, store=self.store)
        self._projection = Projection(self.redis, self.index)
        await self._projection.start()

    @property
    def projection(self) -> Projection | None:
        """The index projection when this process keeps the index, else None."""
        return self.keeper.projection if self.keeper else self._projection

    @property
    def index_role(self) -> str:
        return self.keeper.role if self.keeper else "keeper"

    async def close(self) -> None:
        if self.keeper:
            await self.keeper.stop()  # closes the index too
        if self._projection:
            await self._projection.stop()
        if self.index and not self.keeper:
            self.index.close()
        if self.relay:
            await self.relay.stop()
        if self.redis:
            await self.redis.aclose()
        if self.broker:
            self.broker.close()

    async def submit(self, avid: str, kind: str, fields: dict[str, str] | None = None,
                     first: str | None = None) -> jobstates.SubmitResult:
        """Claim, create the job (with ``fields``) and append ``queued`` atomically, then send
        the chain's first stage (or ``first``: a retry starts where its job failed)."""
        res = await self.jobs.submit(avid, kind, fields=fields)
        if res.accepted:
            try:
                # Sent on the loop: one sub-millisecond Redis call, cheaper than a thread hop
                # (bench_pipeline: the hop cost ~0.3 ms of an accepted request's ~2 ms).
                if first:
                    self.actors.send(first, avid, res.job_id)
                else:
                    self.actors.start(avid, res.job_id)
            except Exception as e:
                # Never leave a claim behind a job that no worker will ever see.
                await self.jobs.finish(res.job_id, avid, jobstates.FAILED,
                                       message=f"could not enqueue: {e}", stage=jobstates.QUEUED)
                raise
            await self.replication.confirm(avid, res.job_id)
        return res

    async def queue_status(self) -> dict[str, Any]:
        return jobstates.queue_status(await self.jobs.active())


def _state(request: Request | WebSocket) -> State:
    return request.app.state.nassav


# -- routes -----------------------------------------------------------------

async def health(request: Request) -> JSONResponse:
    """Redis reachable, live workers per queue, free disk space of the data dir, whether
    downloads are paused and why (always public)."""
    st = _state(request)
    out: dict[str, Any] = {"redis": "down", "workers": workers_per_queue([])}
    ok = True
    try:
        await st.redis.ping()
        out["redis"] = "ok"
        records = (await st.redis.hgetall(WORKERS_KEY)).values()
        out["workers"] = workers_per_queue(live_workers(records, time.time()))
    except (RedisError, OSError) as e:
        ok = False
        out["redis_error"] = str(e)
    try:
        du = shutil.disk_usage(st.config.data_path)
        out["disk"] = {"path": str(st.config.data_path), "free_bytes": du.free, "total_bytes": du.total}
    except OSError as e:
        out["disk"] = {"error": str(e)}
    try:
        out["downloads"] = st.download_gate.state(st.config.download.speed_limit_bytes_per_s)
    except OSError as e:
        out["downloads"] = {"error": str(e)}
    if ok:  # the download jobs waiting at the gate, each with its own reason
        try:
            out["downloads"]["waiting"] = [
                {"avid": j.get("avid"), "job_id": j.get("job_id"), "message": j.get("message", "")}
                for j in await st.jobs.active() if j.get("wait_reason")]
        except RedisError as e:
            out["downloads"]["waiting_error"] = str(e)
    # Which of the gateway's processes answered (gateway.processes), and its part in the index.
    out["gateway"] = {"pid": os.getpid(), "index": st.index_role}
    code = 200 if ok else 503
    return envelope(out, code=code, message="ok" if ok else "redis unreachable")


async def ws_tasks(websocket: WebSocket) -> None:
    """nassav's own task WebSocket ``/ws/tasks/``: ``queue_status`` first, then live events (see
    ``gateway/ws.py``); the old client's socket is ``gateway/compat/task_socket.py``."""
    st = _state(websocket)
    await serve_tasks(websocket, st.relay, st.queue_status, st.ws_limit)


def api_routes() -> list:
    """Every REST route of nassav's own API, relative to ``/api``."""
    return [*downloads_api.routes(), *history_api.routes(), *media_api.routes(), *resources_api.routes(),
            *sources_api.routes(), *settings_api.routes(), *ops_api.routes(),
            *subscriptions_api.routes(), *notifications_api.routes(), *blocklist_api.routes(),
            *retry_api.routes(), *library_import_api.routes(), *editions_api.routes()]


def freeze_startup_objects() -> None:
    """Collect, then move every object alive after start-up (modules, the app, the pools, the
    index: ~75k) into the cyclic collector's permanent generation. Its full passes otherwise
    walked them all every few thousand requests: ~35 ms of CPU each, ~17 µs a request on the
    ingest bench (issue 13). Reference counting still frees them; only a reference cycle among
    them that later becomes garbage would stay, and these live as long as the process."""
    gc.collect()
    gc.freeze()


def create_app(config: Config, redis_url: str, *, max_body_bytes: int = 1 << 20,
               freeze_gc: bool = False) -> Starlette:
    """The gateway; Redis, the relay, the index and its projection open in the lifespan.
    ``freeze_gc`` (the served gateway: ``gateway/serve.py``) ends the start-up with
    :func:`freeze_startup_objects`."""
    st = State(config, redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await st.open()
        if freeze_gc:
            freeze_startup_objects()
        try:
            yield
        finally:
            await st.close()

    dashboard = Dashboard(st, "/dashboard")
    routes = [
        *downloads_api.first_routes(),  # the hot path first (issue 13)
        Route("/health", health, methods=["GET"]),
        Route("/metrics", ops_api.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs, methods=["GET"]),
        *sse.extra_routes(),
        *web.extra_routes(),
        Mount("/api", routes=api_routes()),
        Mount("/nassav/api", routes=compat.api_routes()),
        WebSocketRoute("/ws/tasks/", ws_tasks),
        WebSocketRoute("/nassav/ws/tasks/", compat.ws_tasks),
        Mount("/dashboard", app=dashboard),
    ]
    assets = openapi.assets_dir()
    if assets:
        routes.append(Mount(openapi.DOCS_ASSETS, app=StaticFiles(directory=assets), name="docs-assets"))

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, PoolExhausted):  # Redis is fine; every connection to it is busy
            return envelope(None, code=503, message=f"the gateway is busy: {exc}; try again shortly")
        return envelope(None, code=503, message=f"Redis is unreachable ({exc}); try again shortly")

    async def avid_blocked(request: Request, exc: AvidBlocked) -> JSONResponse:
        # Any route that submits (an importer's, a subscription's) refuses a blocked AVID alike.
        return envelope({"avid": exc.avid, "status": "blocked", "reason": exc.reason}, code=403, message=str(exc))

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.data, code=exc.code, message=exc.message)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
        return JSONResponse({"code": exc.status_code, "message": str(message), "data": None},
                            status_code=exc.status_code, headers=exc.headers)

    # Outermost first. A wrong Host is refused before anything else sees the request; CORS
    # answers the preflights of allowed origins before the Gate answers every other OPTIONS.
    # Everything else is one Gate layer (gateway/guards.py; each layer costs every request).
    hosts = [host_check(HostPolicy(config.allowed_hosts, bind_host=config.host))]
    guards = dict(answer_options=True,
                  request_checks=[origin_check(config.cors_origins), dashboard_check("/dashboard"),
                                  content_type_check(exempt=("/dashboard",))],
                  body=BodyLimit(None, max_bytes=max_body_bytes),
                  auth=TokenAuth(None, token=config.api_token, public=(*PUBLIC_PATHS, *web.PUBLIC_PATHS),
                                 failures=FailureWindow(config.auth_fail_limit, config.auth_fail_window_s)))
    if config.cors_origins:
        middleware = [Middleware(Gate, checks=hosts),
                      Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                                 allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                                 allow_headers=["Authorization", "Content-Type", "Last-Event-ID"]),
                      Middleware(Gate, **guards)]
    else:
        middleware = [Middleware(Gate, checks=hosts, **guards)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={RedisError: redis_down, ConnectionError: redis_down,
                                        ApiError: api_error, HTTPException: http_error,
                                        AvidBlocked: avid_blocked})
    app.state.nassav = st
    app.state.openapi = None
    return app
