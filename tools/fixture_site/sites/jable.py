"""Jable: ``/videos/<avid lower>/`` with an inline ``var hlsUrl = '…'`` (FIELD_NOTES §1).

A title given the C edition on this site (``FixtureSite.add_edition``) also has
``/videos/<avid lower>-c/``, whose player plays the edition's own stream.
"""

from __future__ import annotations

import html
import re

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "jable"
KIND = "source"

_VIDEO = re.compile(r"^/videos/([a-z0-9-]+)/?$")
_SEARCH = re.compile(r"^/search/([^/]+)/?$")


def handle(req: SiteRequest) -> Reply | None:
    if m := _SEARCH.match(req.path):
        t = lookup(req, m.group(1))
        items = f'<a href="{req.base_url}/videos/{t.avid.lower()}/">{html.escape(t.avid)}</a>' if t else ""
        return html_page("Search - Jable.TV", f'<div class="video-img-box">{items}</div>')
    m = _VIDEO.match(req.path)
    if not m or req.scenario == "not_found":
        return None
    slug, edition = m.group(1), ""
    if slug.endswith("-c"):
        slug, edition = slug[:-2], "C"
    t = lookup(req, slug)
    if t is None or (edition and edition not in req.editions.get(t.avid, ())):
        return None
    playlist = f"{req.root_url}/cdn/{t.avid}-{edition}/master.m3u8" if edition else t.playlist_url
    name = f"{t.avid} {t.title}"
    head = (f'<meta property="og:title" content="{html.escape(name)}">\n'
            f'<meta property="og:image" content="{t.cover_url}">\n')
    player = "" if req.scenario == "layout_changed" else f"var hlsUrl = '{playlist}';\n"
    body = (f'<div class="header-left"><h4 class="title">{html.escape(name)}</h4></div>\n'
            f'<div id="player"><video id="player-video" playsinline></video></div>\n'
            f"<script>\n{player}var hlsTitle = 'player';\n</script>\n"
            f'<div class="models">' + "".join(
                f'<a class="model" href="#"><span title="{html.escape(a)}">{html.escape(a)}</span></a>'
                for a, _ in t.actors) + "</div>")
    return html_page(html.escape(f"{name} - Jable.TV"), body, head=head)
