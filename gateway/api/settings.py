"""``GET|PUT /api/setting``: the safe subset of the config, and overrides stored for the next start."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline import overrides
from gateway.api.common import ApiError, doc, envelope, json_object, state


def _answer(st, stored: dict) -> dict:
    # As the next start applies them (apply_stored: no DNS): a stored site address whose
    # name does not resolve today still applies then.
    applied = overrides.stored(st.config_base, stored)
    next_start = overrides.view(applied) if applied is not None else None
    running = overrides.view(st.config)
    return {"settings": running, "overrides": stored, "next_start": next_start,
            "restart_required": next_start is not None and next_start != running,
            "applies": "stored in the data dir; every nassav process applies it when it starts"}


@doc(responses={200: "data.settings (running), data.overrides (stored), data.next_start"})
async def get_settings(request: Request) -> JSONResponse:
    """The changeable settings as running now, and the stored overrides."""
    st = state(request)
    stored = await run_in_threadpool(overrides.load, st.config.data_path)
    return envelope(_answer(st, stored))


@doc(body={"download": "{concurrency, segment_retries, stall_timeout_s, speed_limit_bytes_per_s, "
                       "playlist_max_age_s, mutex_limit, variant, keep_parts, max_retries, editions, "
                       "upgrade_check_interval_s}",
           "library": "{write_nfo, write_poster, extrafanart, actor_photos}",
           "http": "{impersonate, timeout_s, retries}", "log_level": "DEBUG | INFO | WARNING | ERROR",
           "translation": "{target_language, fields, nfo_title, chinese_conversion}",
           "sources": "{name: {weight, enabled, base_url, min_interval_s}}", "catalogues": "same as sources"},
     responses={200: "validated and stored; applies at the next start", 400: "names the wrong key"})
async def put_settings(request: Request) -> JSONResponse:
    """Validate and store overrides (null removes one); they apply when the processes next start."""
    st = state(request)
    body = await json_object(request)
    if not body:
        raise ApiError(400, "send an object of settings to change, e.g. {\"download\": {\"concurrency\": 8}}")
    stored = await run_in_threadpool(overrides.load, st.config.data_path)
    merged = overrides.merge(stored, body)
    try:
        # In a thread: a new base_url is resolved (DNS), which must not stall the event loop.
        await run_in_threadpool(overrides.apply, st.config_base, merged,
                                accepted=overrides.stored(st.config_base, stored))
    except overrides.SettingsError as e:
        raise ApiError(400, str(e)) from None
    await run_in_threadpool(overrides.save, st.config.data_path, merged)
    return envelope(_answer(st, merged), message="saved; restart nassav to apply")


def routes() -> list[Route]:
    return [
        Route("/setting", get_settings, methods=["GET"]),
        Route("/setting", put_settings, methods=["PUT"]),
    ]
