"""Video sources: their configuration and health, and the cookies a user pastes for them."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, doc, envelope, json_object, state
from pipeline import cookies as cookie_store, source_health

MAX_COOKIE_CHARS = 8192


@doc(responses={200: "every configured source, best weight first"})
async def list_sources(request: Request) -> JSONResponse:
    """Each source: name, weight, enabled, base URL, health (state, last outcome, retry_at)."""
    st = state(request)
    names = sorted(st.config.sources, key=lambda n: -st.config.sources[n].weight)
    async with st.redis.pipeline(transaction=False) as p:
        for n in names:
            p.hgetall(source_health.key(n))
        raw = await p.execute()
    jar = await run_in_threadpool(cookie_store.load, st.config.data_path)
    out = []
    for name, h in zip(names, raw):
        cfg = st.config.sources[name]
        health = source_health.decode(h, name)
        out.append({"name": name, "weight": cfg.weight, "enabled": cfg.active, "base_url": cfg.base_url,
                    "health": health["state"], "failures": health["failures"],
                    "last_outcome": health["last_outcome"], "last_detail": health["last_detail"],
                    "last_at": health["last_at"], "last_success_at": health["last_success_at"],
                    "retry_at": health["retry_at"], "has_cookie": bool(jar.get(name))})
    return envelope(out)


def _source_name(st, value: object) -> str:
    names = list(st.config.sources) + list(st.config.catalogues)
    if not isinstance(value, str) or value not in names:
        raise ApiError(400, f"source must be one of {', '.join(names)}")
    return value


@doc(query={"source": "a source name (optional: all when absent)"})
async def get_cookie(request: Request) -> JSONResponse:
    """The stored cookies, masked: enough to recognise them, never enough to reuse them."""
    st = state(request)
    jar = await run_in_threadpool(cookie_store.load, st.config.data_path)
    which = request.query_params.get("source")
    if which:
        name = _source_name(st, which)
        c = jar.get(name) or {}
        return envelope({"source": name, "set": bool(c), "cookie": cookie_store.mask(c) if c else ""})
    return envelope([{"source": n, "set": True, "cookie": cookie_store.mask(c)} for n, c in sorted(jar.items()) if c])


@doc(body={"source": "a source name", "cookie": "a browser's Cookie header: \"a=1; b=2\"",
           "auto": "true: instead of a cookie, have a worker fetch the source's home-page cookies "
                   "(202; the outcome is a cookie_updated or warning event)"},
     responses={202: "auto: the home-page fetch is queued"})
async def set_cookie(request: Request) -> JSONResponse:
    """Store a cookie for a source (e.g. ``cf_clearance`` copied from a browser), or with
    ``auto`` have a worker fetch the one its home page sets (the gateway itself never asks the site)."""
    st = state(request)
    body = await json_object(request)
    name = _source_name(st, body.get("source"))
    if body.get("auto"):
        # A request to the site is slow work: a worker does it; the outcome is an event
        # (cookie_updated, or a warning saying why none could be had).
        st.actors.by_name["refresh_cookie"].send(name)
        return envelope({"source": name, "auto": True, "status": "queued"}, code=202,
                        message=f"fetching {name}'s cookies from its home page in the background; "
                                "watch the event stream for cookie_updated")
    text = body.get("cookie")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "cookie must be a non-empty string such as \"cf_clearance=…; sid=…\"")
    if len(text) > MAX_COOKIE_CHARS:
        raise ApiError(400, f"cookie is longer than {MAX_COOKIE_CHARS} characters")
    parsed = cookie_store.parse_header(text)
    if not parsed:
        raise ApiError(400, "cookie has no name=value pair; send it as \"name=value; name2=value2\"")

    await run_in_threadpool(cookie_store.put, st.config.data_path, name, parsed)
    return envelope({"source": name, "set": True, "cookie": cookie_store.mask(parsed)},
                    message=f"cookie for {name} saved; the next job uses it")


@doc(query={"source": "a source name"}, responses={404: "no cookie stored for it"})
async def delete_cookie(request: Request) -> JSONResponse:
    """Forget a source's cookie."""
    st = state(request)
    which = request.query_params.get("source")
    if not which:
        which = (await json_object(request)).get("source")
    name = _source_name(st, which)

    if not await run_in_threadpool(cookie_store.drop, st.config.data_path, name):
        raise ApiError(404, f"no cookie stored for {name}")
    return envelope({"source": name, "set": False}, message=f"cookie for {name} deleted")


def routes() -> list[Route]:
    return [
        Route("/source/list", list_sources, methods=["GET"]),
        Route("/source/cookie", get_cookie, methods=["GET"]),
        Route("/source/cookie", set_cookie, methods=["POST"]),
        Route("/source/cookie", delete_cookie, methods=["DELETE"]),
    ]
