"""The old client's settings, ``{enable_avatar, display_title}``, kept in nassav's stored
overrides (the ``ui`` section of ``settings.json``, beside ``PUT /api/setting``'s).

The old server sent ``enable_avatar`` as the strings "true"/"false" and the client compares
with the string: both directions keep that. These settings are only read by clients, so a
change is seen at once (the stored value is read on every call), with no restart.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api.common import ApiError, doc, envelope, json_object, state
from pipeline import overrides
from pipeline.config import DISPLAY_TITLES, UiConfig


async def ui_settings(st) -> UiConfig:
    """The ``ui`` settings as stored now (the config file's, under the stored overrides)."""
    stored = await run_in_threadpool(overrides.load, st.config.data_path)
    try:
        return overrides.apply(st.config_base, {"ui": stored["ui"]}, check_targets=False).ui
    except (KeyError, TypeError, overrides.SettingsError):
        return st.config_base.ui  # nothing stored, or a hand-edited file nassav will name at start


def _shape(ui: UiConfig) -> dict[str, str]:
    return {"enable_avatar": "true" if ui.enable_avatar else "false", "display_title": ui.display_title}


@doc(responses={200: "data: {enable_avatar: \"true\"|\"false\", display_title}"})
async def get_settings(request: Request) -> JSONResponse:
    """The client's settings: show actor photos, and which title to show."""
    return envelope(_shape(await ui_settings(state(request))))


def _change(body: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = {}
    if "enable_avatar" in body:
        v = body["enable_avatar"]
        if v not in ("true", "false", True, False):
            raise ApiError(400, "enable_avatar must be \"true\" or \"false\"")
        change["enable_avatar"] = v in ("true", True)
    if "display_title" in body:
        if body["display_title"] not in DISPLAY_TITLES:
            raise ApiError(400, f"display_title must be one of {', '.join(DISPLAY_TITLES)}")
        change["display_title"] = body["display_title"]
    unknown = sorted(set(body) - {"enable_avatar", "display_title"})
    if unknown or not change:
        accepted = ' | '.join(DISPLAY_TITLES)
        raise ApiError(400, f"send {{\"enable_avatar\": \"true\"|\"false\", \"display_title\": {accepted}}} "
                            "(either or both)" + (f"; unknown: {', '.join(unknown)[:100]}" if unknown else ""))
    return change


@doc(body={"enable_avatar": "\"true\" | \"false\"", "display_title": " | ".join(DISPLAY_TITLES)},
     responses={200: "stored; data: the settings now", 400: "names the accepted values"})
async def put_settings(request: Request) -> JSONResponse:
    """Change either or both settings; they apply at once."""
    st = state(request)
    change = _change(await json_object(request))

    def save() -> None:
        stored = overrides.load(st.config.data_path)
        merged = overrides.merge(stored, {"ui": change})
        overrides.apply(st.config_base, {"ui": merged["ui"]}, check_targets=False)  # validates
        overrides.save(st.config.data_path, merged)
    await run_in_threadpool(save)
    return envelope(_shape(await ui_settings(st)), message="settings updated")
