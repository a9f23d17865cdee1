"""KanAV (MacCMS): search → ``/index.php/vod/play/id/N/sid/1/nid/1.html`` whose player JSON
carries ``"url"`` as base64 of the URL-quoted playlist address (``encrypt: 2``)."""

from __future__ import annotations

import base64
import json
import re
from html import escape
from urllib.parse import quote

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest

NAME = "kanav"
KIND = "source"

_PLAY = re.compile(r"^/index\.php/vod/play/id/(\d+)/sid/1/nid/1\.html$")


def encode_url(url: str) -> str:
    return base64.b64encode(quote(url, safe="").encode()).decode()


def handle(req: SiteRequest) -> Reply | None:
    if req.path == "/index.php/vod/search.html":
        query = req.query.get("wd", "")
        t = None if req.scenario == "not_found" else lookup(req, query)
        items = (f'<div class="module-item"><a href="/index.php/vod/play/id/{t.num_id}/sid/1/nid/1.html" '
                 f'title="{escape(t.avid)} {escape(t.title)}"><img class="lazy" data-original="{t.cover_url}" '
                 f'alt="{escape(t.avid)}"></a><div class="module-item-title">'
                 f'<a href="/index.php/vod/detail/id/{t.num_id}.html">{escape(t.avid)} {escape(t.title)}</a></div></div>'
                 if t else '<div class="module-empty"><p>没有找到相关内容</p></div>')
        return html_page(f"{escape(query)}搜索结果 - KANAV", f'<div class="module-items">{items}</div>')
    m = _PLAY.match(req.path)
    if not m or req.scenario == "not_found":
        return None
    t = next((x for x in req.titles.values() if str(x.num_id) == m.group(1)), None)
    if t is None:
        return None
    player = {"flag": "play", "encrypt": 2, "trysee": 0, "points": 0, "link": req.path,
              "vod_data": {"vod_name": f"{t.avid} {t.title}"}, "id": str(t.num_id), "sid": 1, "nid": 1,
              "url_next": "", "from": "kanav", "server": "no", "note": ""}
    key = "src_enc" if req.scenario == "layout_changed" else "url"  # a changed site renames the field
    player[key] = encode_url(t.playlist_url)
    script = "var player_aaaa=" + json.dumps(player, ensure_ascii=False).replace("/", "\\/")
    return html_page(f"{escape(t.avid)} - 在线播放 - KANAV",
                     f'<div class="MacPlayer"><script type="text/javascript">{script}</script>'
                     '<script src="/static/js/player.js"></script></div>')
