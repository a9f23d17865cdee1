"""What every API module shares: the envelope, the one API error, and input parsing.

Every answer is the old client's ``{code, message, data}`` with ``code`` equal to the HTTP
status. Handlers raise :class:`ApiError` for anything the caller got wrong; the app turns it
into an envelope, so bad input is always a 4xx and never reaches a 500.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import json_input
from gateway.json_input import JsonRefused
from pipeline import events as ev
from pipeline.avid import Avid, parse
from pipeline.errors import InvalidAvid
from pipeline.jsontext import dumps_utf8

if TYPE_CHECKING:  # for the annotations only: handlers get these from the app's State
    import redis.asyncio as aioredis

    from actors.registry import Actors
    from gateway.index import LibraryIndex
    from gateway.relay import Relay
    from pipeline.config import Config
    from pipeline.jobs import AsyncJobs, SubmitResult
    from pipeline.store import ResourceStore

MAX_PAGE_SIZE = 100
MAX_BATCH = 500


class Json(JSONResponse):
    """Starlette's JSON answer, which a path that is not UTF-8 (an imported file's name in a
    report or a record) cannot make a 500: its bytes are kept as ``\\udcXX`` escapes."""

    def render(self, content: Any) -> bytes:
        return dumps_utf8(content, allow_nan=False, separators=(",", ":"))


def envelope(data: Any = None, *, code: int = 200, message: str = "ok", **extra: Any) -> JSONResponse:
    """The old client's ``{code, message, data}``, with ``code`` equal to the HTTP status."""
    body = {"code": code, "message": message, "data": data}
    body.update(extra)
    return Json(body, status_code=code)


# An envelope's bytes exactly as ``JSONResponse`` renders them (tests/test_api_raw_endpoint.py
# compares the two), for the endpoints that answer without a response object.
_JSON_HEAD = (b"content-type", b"application/json")


def envelope_bytes(data: Any, *, code: int, message: str) -> bytes:
    """The body :func:`envelope` answers for ``data``, ``code`` and ``message``."""
    return json.dumps({"code": code, "message": message, "data": data}, ensure_ascii=False,
                      allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


class RawEndpoint:
    """A route endpoint that answers an envelope with no ``Request`` and no response object.

    ``fn(state, path_params)`` returns ``(code, message, data)``. Starlette runs an endpoint
    that is not a function as a bare ASGI app, so a request skips its per-route wrappers (the
    ``Request``, a second exception catcher, a ``send`` wrapper: ~10 % of a duplicate submit's
    CPU, issue 13). Errors still reach the app's exception handlers (``ApiError``,
    ``RedisError`` … → their envelopes) through the router's own catcher. Same status,
    headers and bytes as :func:`envelope`."""

    def __init__(self, fn: Callable[[Any, dict[str, Any]], Any]):
        functools.update_wrapper(self, fn)  # __doc__ and __openapi__, for the OpenAPI document
        self.fn = fn

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        code, message, data = await self.fn(scope["app"].state.nassav, scope["path_params"])
        body = envelope_bytes(data, code=code, message=message)
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-length", b"%d" % len(body)), _JSON_HEAD]})
        await send({"type": "http.response.body", "body": body})


def paginated(items: list[Any], *, total: int, page: int, page_size: int, message: str = "ok") -> JSONResponse:
    """An envelope with the old client's ``pagination`` block."""
    pages = math.ceil(total / page_size) if page_size else 0
    return envelope(items, message=message,
                    pagination={"total": total, "page": page, "page_size": page_size, "pages": pages})


class ApiError(Exception):
    """A request the API refuses; becomes an envelope with ``code`` as the HTTP status."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class ApiState(Protocol):
    """What API handlers may use of the app's shared state (:class:`gateway.app.State`).

    Job records and transitions go through ``jobs``; ``redis`` is for the rest (counters,
    the worker registry, the event stream)."""

    config: Config
    config_base: Config  # the config before the data dir's stored overrides
    store: ResourceStore
    index: LibraryIndex
    redis: aioredis.Redis
    jobs: AsyncJobs
    relay: Relay
    actors: Actors

    async def submit(self, avid: str, kind: str, fields: dict[str, str] | None = None,
                     first: str | None = None) -> SubmitResult:
        """Claim, create the job and append ``queued`` atomically, then send ``resolve`` (or
        the stage ``first``)."""
        ...

    async def queue_status(self) -> dict[str, Any]:
        """The old client's ``queue_status`` shape."""
        ...


async def notify(st: ApiState, type_: str, avid: str, **data: Any) -> None:
    """An event for a change made by the API (not a job), so other subscribers and the index's
    projection hear of it."""
    await st.redis.xadd(ev.STREAM, ev.encode(type_, avid=avid, job_id="", stage="library", data=data),
                        maxlen=st.config.events_maxlen, approximate=True)


def not_modified(request: Request, etag: str, mtime_s: float) -> bool:
    """True when the request's validators say the client's copy is current: ``If-None-Match``
    lists ``etag`` (or ``*``), or, without it, ``If-Modified-Since`` is not before ``mtime_s``."""
    inm, ims = request.headers.get("if-none-match"), request.headers.get("if-modified-since")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag in tags
    if not ims:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims).timestamp()
    except (TypeError, ValueError, IndexError):
        return False
    return int(mtime_s) <= since


def state(request: Request) -> ApiState:
    """The app's shared state, as handlers may use it."""
    return request.app.state.nassav


# Parsed AVIDs remembered (an Avid is immutable): a client resubmitting the same codes skips
# the parse, a few µs of a duplicate submit (issue 13). Bounded; refusals are not kept.
_parse_str = functools.lru_cache(maxsize=4096)(parse)


def avid_of(text: object) -> Avid:
    """Parse an AVID or raise a 400 naming the accepted forms."""
    try:
        return _parse_str(text) if type(text) is str else parse(text)
    except InvalidAvid as e:
        raise ApiError(400, str(e)) from None


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was expected."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json_input.loads(raw)
    except JsonRefused as e:
        raise ApiError(400, f"the body is {e}; send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def int_param(params: Mapping[str, str], name: str, default: int, *, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer from {lo} to {hi} (got {raw[:20]!r})") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be an integer from {lo} to {hi} (got {value})")
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def bool_param(params: Mapping[str, str], name: str) -> bool | None:
    """``None`` when absent; true/false/1/0/yes/no otherwise; anything else is a 400."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ApiError(400, f"{name} must be true or false (got {raw[:20]!r})")


def choice_param(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)} (got {raw[:30]!r})")
    return raw


def body_bool(body: Mapping[str, Any], name: str) -> bool | None:
    if name not in body or body[name] is None:
        return None
    if not isinstance(body[name], bool):
        raise ApiError(400, f"{name} must be true or false")
    return body[name]


def doc(*, query: Mapping[str, str] | None = None, body: Mapping[str, Any] | None = None,
        responses: Mapping[int, str] | None = None) -> Callable:
    """Attach OpenAPI details (query parameters, body fields, responses) to an endpoint."""
    def mark(fn: Callable) -> Callable:
        fn.__openapi__ = {"query": dict(query or {}), "body": dict(body or {}),
                          "responses": dict(responses or {})}
        return fn
    return mark
