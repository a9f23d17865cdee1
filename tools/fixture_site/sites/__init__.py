"""Fake pages of the real sites, one module per site, discovered at start-up.

The interface every site module follows::

    NAME: str          # "jable": the site answers under /site/<NAME>/...
    KIND: str          # "source" or "catalogue"
    def handle(req: SiteRequest) -> Reply | None   # None = the site's 404 page

``SiteRequest``, ``Reply`` and ``Title`` live in ``tools/fixture_site/types.py``.
``req.path`` is the path below ``/site/<NAME>`` (starting with "/"), ``req.query`` holds
the first value of each query parameter, ``req.headers`` has lower-case names.

The server answers the scenarios ``challenge_200``, ``challenge_403``, ``blocked_451``,
``error_500`` and ``timeout`` itself, before the handler runs. The handler sees
``req.scenario`` in ``found`` | ``not_found`` | ``layout_changed`` and should answer:

- ``found``: the page as the real site lays it out, for an AVID in ``req.titles``
  (an AVID not in ``req.titles`` is not found: return None or a 404 page).
- ``not_found``: what the site answers for a title it does not have (usually 404).
- ``layout_changed``: a 200 page where the landmark the adapter relies on is gone.

Every URL a page carries should be absolute on this server (``req.root_url``) or relative
to ``req.base_url``: ``Title.playlist_url``, ``Title.cover_url`` and friends already are.
Modules whose name starts with ``_`` are helpers, not sites. Keep titles and names fictional.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from types import ModuleType

from tools.fixture_site.types import Reply, SiteRequest, Title

# Modules that failed to import: name -> traceback text. A broken site module must not
# take the whole fixture down (other engineers' work-in-progress lives here too).
LOAD_ERRORS: dict[str, str] = {}


def discover() -> dict[str, ModuleType]:
    """Import every site module of this package; return NAME -> module."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"{__name__}.{info.name}")
            name, kind, handle = mod.NAME, mod.KIND, mod.handle
            if kind not in ("source", "catalogue") or not callable(handle):
                raise TypeError(f"KIND must be 'source' or 'catalogue' and handle callable (got {kind!r})")
        except Exception:
            LOAD_ERRORS[info.name] = traceback.format_exc()
            print(f"fixture_site: skipping site module {info.name}: "
                  f"{LOAD_ERRORS[info.name].strip().splitlines()[-1]}", file=sys.stderr)
            continue
        found[name] = mod
    return found


def lookup(req: SiteRequest, text: str) -> Title | None:
    """The title whose AVID is ``text`` (any case, hyphen optional), or None."""
    key = text.strip().upper()
    if key in req.titles:
        return req.titles[key]
    squashed = key.replace("-", "")
    for avid, t in req.titles.items():
        if avid.replace("-", "") == squashed:
            return t
    return None


def html_page(title: str, body: str, *, head: str = "", status: int = 200) -> Reply:
    """A minimal HTML document."""
    doc = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n{head}"
           f"</head>\n<body>\n{body}\n</body></html>\n")
    return Reply(status=status, body=doc)


__all__ = ["LOAD_ERRORS", "Reply", "SiteRequest", "Title", "discover", "html_page", "lookup"]
