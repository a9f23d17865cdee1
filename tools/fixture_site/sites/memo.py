"""Memo: ``/video/<AVID>`` with ``og:title``/``og:image``; the playlist is only on the CDN.

The CDN (``/memocdn/stream/<AVID>/master.m3u8``) is served by the server itself.
"""

from __future__ import annotations

import re
from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "memo"
KIND = "source"

_PAGE = re.compile(r"^/video/([A-Za-z0-9-]+)$")


def handle(req: SiteRequest) -> Reply | None:
    m = _PAGE.match(req.path)
    if not m or req.scenario == "not_found":
        return None
    t = lookup(req, m.group(1))
    if t is None:
        return None
    name = escape(f"{t.avid} {t.title}")
    head = "" if req.scenario == "layout_changed" else (
        f'<meta property="og:title" content="{name}">\n<meta property="og:image" content="{t.cover_url}">\n')
    body = (f'<div class="container"><div id="mainplayer" class="player"><div id="video-player"></div></div>\n'
            f'<h1 class="video-title">{name}</h1></div>\n<script src="/static/js/player.min.js"></script>')
    return html_page(f"{escape(t.avid)} - MEMOJAV", body, head=head)
