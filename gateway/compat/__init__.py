"""The original NASSAV client's contract, at ``/nassav/api/…`` and ``/nassav/ws/tasks/``.

The old Vue client (and the generation before it) speaks here unchanged; nassav's own, richer
API stays at ``/api/…``. This package is a thin translation over the same core (the index, the
store, ``State.submit``, the relay): it owns shapes and meanings, never storage or jobs.

- ``library.py``: sources, metadata, preview, the video's path and deletion, actors, genres,
  and the route list (nassav's own routes behind the translations); ``settings.py`` the
  client's settings; ``adding.py`` add, refresh and the batch (waiting for their jobs);
  ``old_readme.py`` the older generation's calls; ``shapes.py`` the old field names.
- ``tasks.py``: downloads and the queue, and the task WebSocket with the old message order.

Every call, its shape and each deliberate deviation are listed in ``docs/compat.md``.
"""

from __future__ import annotations

from gateway.compat import library, tasks


def api_routes() -> list:
    """Every route under ``/nassav/api``: tasks' first, then library's (translations, then nassav's
    own routes for what the old client reads unchanged). Of routes with the same path and method
    only the first is kept: it is the one Starlette would match, and the API docs list it."""
    routes, taken = [], set()
    for r in [*tasks.routes(), *library.routes()]:
        keys = {(r.path, m) for m in r.methods or ()}
        if not keys & taken:
            routes.append(r)
            taken |= keys
    return routes


ws_tasks = tasks.ws_tasks
