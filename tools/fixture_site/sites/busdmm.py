"""busdmm: the JavBus layout (FIELD_NOTES §2), page `/{AVID}`, relative cover href."""

from __future__ import annotations

from tools.fixture_site.sites import _javbus_layout
from tools.fixture_site.types import Reply, SiteRequest

NAME = "busdmm"
KIND = "catalogue"


def handle(req: SiteRequest) -> Reply | None:
    return _javbus_layout.handle(req, "JavBus")
