"""NetFlav: a Next.js page ``/video?id=<AVID>``; the data is in ``<script id="__NEXT_DATA__">``.

For a title it does not have, the app still answers 200 with ``video.data`` null.
"""

from __future__ import annotations

import json
from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "netflav"
KIND = "source"


def handle(req: SiteRequest) -> Reply | None:
    if req.path != "/video":
        return None
    query = req.query.get("id", "")
    t = None if req.scenario == "not_found" else lookup(req, query)
    data = None if t is None else {
        "videoId": t.avid, "code": t.avid, "title": f"{t.avid} {t.title}", "preview": t.cover_url,
        # An embed of another host first: the adapter must pick the HLS one.
        "srcs": ["https://embed.fixture-other.invalid/e/x1", t.playlist_url], "tags": t.genres,
    }
    payload = {"props": {"pageProps": {}, "initialState": {"video": {"data": data, "loading": False}}},
               "page": "/video", "query": {"id": query}, "buildId": "fixture-build"}
    if req.scenario == "layout_changed":
        script = '<script src="/_next/static/chunks/app/video/page-fixture.js" async=""></script>'
    else:
        # "</" cannot appear inside a script element; JSON allows "<\/".
        blob = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
        script = f'<script id="__NEXT_DATA__" type="application/json">{blob}</script>'
    return html_page(f"{escape(query)} - Netflav", f'<div id="__next"><div class="videoDetailPage"></div></div>\n{script}')
