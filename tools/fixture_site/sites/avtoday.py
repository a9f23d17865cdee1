"""AvToday: ``/search?keyword=`` → ``/video/<slug>`` whose player is one nested iframe
(``/embed/<slug>``) with the ``m3u8`` URL in its (slash-escaped) player config."""

from __future__ import annotations

import json
import re
from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "avtoday"
KIND = "source"

_VIDEO = re.compile(r"^/(video|embed)/([a-z0-9]+-\d+)(?:-[a-z0-9-]*)?$")


def handle(req: SiteRequest) -> Reply | None:
    if req.path == "/search":
        query = req.query.get("keyword", "")
        t = None if req.scenario == "not_found" else lookup(req, query)
        items = (f'<li class="video"><a href="/video/{t.avid.lower()}-fixture-story" '
                 f'title="{escape(t.avid)} {escape(t.title)}"><img src="{t.cover_url}"></a></li>'
                 if t else '<li class="empty">No videos found.</li>')
        return html_page(f"Search results for {escape(query)} - AvToday",
                         f'<main class="search"><ul class="videos">{items}</ul></main>')
    m = _VIDEO.match(req.path)
    if not m or req.scenario == "not_found":
        return None
    t = lookup(req, m.group(2))
    if t is None:
        return None
    if m.group(1) == "embed":
        config = json.dumps({"file": t.playlist_url, "autostart": False}).replace("/", "\\/")
        return html_page("player", f'<div id="p"></div><script>\nvar config = {config};\n'
                                   'jwplayer("p").setup(config);\n</script>')
    player = ('<div class="player" data-player="v2"></div>' if req.scenario == "layout_changed" else
              f'<div class="player"><iframe src="/embed/{t.avid.lower()}" allowfullscreen frameborder="0"></iframe></div>')
    return html_page(f"{escape(t.avid)} {escape(t.title)} - AvToday",
                     f'<article class="video-page"><h1>{escape(t.avid)} {escape(t.title)}</h1>\n{player}</article>')
