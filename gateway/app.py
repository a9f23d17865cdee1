"""The Starlette gateway: thin routes that validate, claim, append an event and enqueue.

Nothing slow happens in a request: the stages run in the workers. ``create_app(config,
redis_url)`` builds everything explicitly; Redis pools open in the lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gateway.relay import Relay, id_key
from pipeline import events as ev, jobs as jobstates
from pipeline.avid import parse
from pipeline.broker import QUEUES, make_broker
from pipeline.config import Config
from pipeline.errors import InvalidAvid
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.gateway")

WORKERS_KEY = "nassav:workers"
WORKER_STALE_S = 30


def envelope(data: Any = None, *, code: int = 200, message: str = "ok", **extra: Any) -> JSONResponse:
    """The old client's ``{code, message, data}``, with ``code`` equal to the HTTP status."""
    body = {"code": code, "message": message, "data": data}
    body.update(extra)
    return JSONResponse(body, status_code=code)


class State:
    """What the routes share; one per app."""

    def __init__(self, config: Config, redis_url: str):
        self.config = config
        self.redis_url = redis_url
        self.store = ResourceStore(config.data_path)
        self.redis: aioredis.Redis | None = None
        self.relay: Relay | None = None
        self.actors = None
        self.broker = None
        self._submit = None

    async def open(self) -> None:
        self.redis = aioredis.Redis.from_url(self.redis_url, socket_timeout=5,
                                             socket_connect_timeout=2, health_check_interval=30)
        self._submit = self.redis.register_script(jobstates._SUBMIT)
        self.broker = make_broker(self.redis_url, self.config.workers)
        from actors.registry import declare  # the gateway only sends messages

        self.actors = declare(self.broker, self.config)
        self.relay = Relay(self.redis)
        await self.relay.start()

    async def close(self) -> None:
        if self.relay:
            await self.relay.stop()
        if self.redis:
            await self.redis.aclose()
        if self.broker:
            self.broker.close()

    async def submit(self, avid: str, kind: str) -> jobstates.SubmitResult:
        job_id = jobstates.new_job_id()
        keys, args = jobstates.submit_args(avid, job_id, kind, stream=ev.STREAM,
                                           maxlen=self.config.events_maxlen)
        res = jobstates.parse_submit(await self._submit(keys=keys, args=args), job_id)
        if res.accepted:
            try:
                await run_in_threadpool(self.actors.send, "resolve", avid, job_id)
            except Exception as e:
                # Never leave a claim behind a job that no worker will ever see.
                await run_in_threadpool(self._fail_sync, job_id, avid, f"could not enqueue: {e}")
                raise
        return res

    def _fail_sync(self, job_id: str, avid: str, message: str) -> None:
        import redis as syncredis

        with syncredis.Redis.from_url(self.redis_url) as c:
            jobstates.Jobs(c).finish(job_id, avid, jobstates.FAILED, message=message, stage="queued")

    async def active_jobs(self) -> list[dict[str, str]]:
        assert self.redis is not None
        ids = await self.redis.zrange(jobstates.ACTIVE, 0, -1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(jobstates.job_key(i.decode() if isinstance(i, bytes) else i))
            rows = await pipe.execute()
        return [jobstates._decode(h) for h in rows if h]

    async def queue_status(self) -> dict[str, Any]:
        return jobstates.queue_status(await self.active_jobs())


def _state(request: Request | WebSocket) -> State:
    return request.app.state.nassav


# -- routes -----------------------------------------------------------------

async def submit_download(request: Request) -> JSONResponse:
    st = _state(request)
    try:
        avid = parse(request.path_params["avid"])
    except InvalidAvid as e:
        return envelope(None, code=400, message=str(e))
    if st.store.has_video(avid):
        return envelope({"avid": avid.code, "status": "downloaded"}, code=409,
                        message=f"{avid.code} is already downloaded")
    res = await st.submit(avid.code, "download")
    if not res.accepted:
        return envelope({"avid": avid.code, "job_id": res.job_id, "status": "exists"}, code=409,
                        message=f"{avid.code} already has a job in progress ({res.job_id})")
    return envelope({"avid": avid.code, "job_id": res.job_id, "task_id": res.job_id,
                     "status": jobstates.QUEUED}, code=202, message=f"{avid.code} queued")


async def queue_status(request: Request) -> JSONResponse:
    return envelope(await _state(request).queue_status())


async def health(request: Request) -> JSONResponse:
    st = _state(request)
    out: dict[str, Any] = {"redis": "down", "workers": {q: 0 for q in QUEUES}}
    ok = True
    try:
        await st.redis.ping()
        out["redis"] = "ok"
        now = time.time()
        for raw in (await st.redis.hgetall(WORKERS_KEY)).values():
            w = json.loads(raw)
            if now - float(w.get("last_seen", 0)) < WORKER_STALE_S:
                for q in w.get("queues", []):
                    out["workers"][q] = out["workers"].get(q, 0) + 1
    except (RedisError, OSError) as e:
        ok = False
        out["redis_error"] = str(e)
    try:
        du = shutil.disk_usage(st.config.data_path)
        out["disk"] = {"path": str(st.config.data_path), "free_bytes": du.free, "total_bytes": du.total}
    except OSError as e:
        out["disk"] = {"error": str(e)}
    code = 200 if ok else 503
    return envelope(out, code=code, message="ok" if ok else "redis unreachable")


async def ws_tasks(websocket: WebSocket) -> None:
    """Old-client WebSocket: ``queue_status`` first, then live events; resume with ?last_id=."""
    st = _state(websocket)
    await websocket.accept()
    last_id = websocket.query_params.get("last_id") or ""
    only = websocket.query_params.get("avid", "").upper()
    sub = st.relay.subscribe()
    sent_upto = (0, 0)
    lock = asyncio.Lock()  # the pump and the request loop both send

    async def send(obj: dict[str, Any]) -> None:
        async with lock:
            await websocket.send_json(obj)

    async def send_event(e: ev.Event) -> None:
        nonlocal sent_upto
        k = id_key(e.id)
        if k <= sent_upto:
            return
        sent_upto = k
        if only and e.avid != only:
            return
        await send(e.to_message())

    async def pump() -> None:
        if last_id:
            for e in await st.relay.backlog(last_id):
                await send_event(e)
        while True:
            try:
                e = await asyncio.wait_for(sub.queue.get(), timeout=20)
            except asyncio.TimeoutError:
                if sub.overflowed:
                    break
                await send({"type": "ping", "data": {"ts": time.time()}})
                continue
            if e is None:
                break
            await send_event(e)
            if sub.overflowed and sub.queue.empty():
                break
        await send({"type": "error", "message": "subscriber too slow; reconnect with "
                                   f"last_id={'-'.join(map(str, sent_upto))}"})
        await websocket.close(1013)

    try:
        await send({"type": "queue_status", "data": await st.queue_status()})
        pump_task = asyncio.create_task(pump())
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    msg = json.loads(text)
                    action = msg.get("action") if isinstance(msg, dict) else None
                except ValueError:
                    await send({"type": "error", "message": "invalid JSON"})
                    continue
                if action == "get_queue_status":
                    await send({"type": "queue_status", "data": await st.queue_status()})
                elif action == "ping":
                    await send({"type": "pong", "data": {"ts": time.time()}})
                else:
                    await send({"type": "error",
                                               "message": "unknown action; accepted: get_queue_status, ping"})
        finally:
            pump_task.cancel()
            with contextlib.suppress(BaseException):
                await pump_task
    except WebSocketDisconnect:
        pass
    finally:
        st.relay.unsubscribe(sub)
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


def api_routes() -> list:
    return [
        Route("/downloads/{avid}", submit_download, methods=["POST"]),
        Route("/tasks/queue/status", queue_status, methods=["GET"]),
    ]


def create_app(config: Config, redis_url: str) -> Starlette:
    st = State(config, redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await st.open()
        try:
            yield
        finally:
            await st.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Mount("/api", routes=api_routes()),
        Mount("/nassav/api", routes=api_routes()),
        WebSocketRoute("/ws/tasks/", ws_tasks),
        WebSocketRoute("/nassav/ws/tasks/", ws_tasks),
    ]

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        return envelope(None, code=503, message=f"Redis is unreachable ({exc}); try again shortly")

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={RedisError: redis_down, ConnectionError: redis_down})
    app.state.nassav = st
    return app
