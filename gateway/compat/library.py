"""The old client's library calls (resources, metadata, actors, genres, settings, sources).

For now these are nassav's own routes unchanged; the translation to the old shapes lands here.
"""

from __future__ import annotations

from gateway.api import downloads as downloads_api, ops as ops_api, resources as resources_api
from gateway.api import settings as settings_api, sources as sources_api


def routes() -> list:
    """The library routes, relative to ``/nassav/api``."""
    return [*downloads_api.routes(), *resources_api.routes(), *sources_api.routes(),
            *settings_api.routes(), *ops_api.routes()]
