"""The web page at ``/``: plain HTML, CSS and JavaScript from ``static/``, no build step.

The files hold no data (everything comes from the API, which asks for the token), so they
stay public when a token is set: the page must load to ask for it. The page is in English and
Simplified Chinese; it picks its language itself, before its first paint (``static/i18n.js``:
only the page knows the choice remembered in the browser), so every visitor gets the same file.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_PREFIX = "/web"
PUBLIC_PATHS = ("/", *(f"{ASSETS_PREFIX}/{p.name}" for p in sorted(STATIC_DIR.iterdir()) if p.is_file()))


class _Assets(StaticFiles):
    # Revalidate every time (a 304 when unchanged): after an upgrade the page and its
    # script must not come from two different versions.
    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def index(request: Request) -> Response:
    """The page itself; revalidated on every load so an upgrade shows at once."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def extra_routes() -> list:
    """``/`` and its assets under ``/web/`` (mounted by ``create_app``)."""
    return [Route("/", index, methods=["GET", "HEAD"]),
            Mount(ASSETS_PREFIX, app=_Assets(directory=STATIC_DIR), name="web")]
