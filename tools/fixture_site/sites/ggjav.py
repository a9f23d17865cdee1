"""GGJav: ``/main/search?string=`` → ``/main/video?id=N`` whose ``var l = '…'`` is base64 of a
JSON server→links map with every byte shifted up by 0x58."""

from __future__ import annotations

import base64
import json
from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "ggjav"
KIND = "source"


def encode_servers(servers: dict) -> str:
    raw = json.dumps(servers).encode()
    return base64.b64encode(bytes((b + 0x58) % 256 for b in raw)).decode()


def handle(req: SiteRequest) -> Reply | None:
    if req.path == "/main/search":
        query = req.query.get("string", "")
        t = None if req.scenario == "not_found" else lookup(req, query)
        items = (f'<div class="column"><div class="item"><a href="/main/video?id={t.num_id}">'
                 f'<img src="{t.cover_url}"><div class="item_title">{escape(t.avid)} {escape(t.title)}</div>'
                 '</a></div></div>' if t else '<div class="no_result">No results for your search</div>')
        return html_page(f"Search {escape(query)} - GGJAV", f'<div class="main_content"><div class="columns">{items}</div></div>')
    if req.path != "/main/video" or req.scenario == "not_found":
        return None
    t = next((x for x in req.titles.values() if str(x.num_id) == req.query.get("id", "")), None)
    if t is None:
        return None
    # The preferred server carries the playlist; a lesser one a broken link the adapter must not pick.
    servers = {"mmvh01": [f"{req.root_url}/cdn/NOPE-000/master.m3u8"], "ggjav": [t.playlist_url]}
    script = ("var servers = window.__srv || [];\nloadServers(servers);" if req.scenario == "layout_changed"
              else f"var l = '{encode_servers(servers)}';\nvar s = JSON.parse(decode(l));\nloadServers(s);")
    return html_page(f"{escape(t.avid)} {escape(t.title)} - GGJAV",
                     f'<div class="video_wrapper"><div id="player"></div></div>\n<script>\n{script}\n</script>')
