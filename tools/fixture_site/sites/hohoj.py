"""HohoJ: ``/search?text=`` → ``/video?id=N`` cards → ``/embed?id=N`` with ``var videoSrc``.

The search also lists an unrelated "recommended" card first, as the real site does when a
query is loose: an adapter must take the card that names the AVID, not the first one.
"""

from __future__ import annotations

from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest, Title

NAME = "hohoj"
KIND = "source"

DECOY_ID = 99901


def by_id(req: SiteRequest, text: str) -> Title | None:
    return next((t for t in req.titles.values() if str(t.num_id) == text.strip()), None)


def _card(vid: int, name: str, img: str) -> str:
    return (f'<div class="col-6 col-md-3 video-item"><a href="/video?id={vid}" class="thumb">'
            f'<img src="{img}" alt="{escape(name)}"></a>'
            f'<div class="title"><a href="/video?id={vid}">{escape(name)}</a></div></div>')


def handle(req: SiteRequest) -> Reply | None:
    if req.path == "/search":
        query = req.query.get("text", "")
        t = None if req.scenario == "not_found" else lookup(req, query)
        cards = _card(DECOY_ID, "ZZQ-777 推薦 Recommended Fixture Clip", f"{req.root_url}/img/nowprinting.gif")
        cards += _card(t.num_id, f"{t.avid} {t.title}", t.cover_url) if t else ""
        if t is None:
            cards = '<p class="no-result">找不到相關影片 No videos found</p>'
        return html_page(f"搜尋: {escape(query)} - HOHOJ.TV",
                         f'<div class="container"><h2>搜尋結果</h2><div class="row video-list">{cards}</div></div>')
    t = by_id(req, req.query.get("id", ""))
    if t is None or req.scenario == "not_found":
        return None
    if req.path == "/video":
        return html_page(f"{escape(t.avid)} - HOHOJ.TV",
                         f'<h1>{escape(t.avid)} {escape(t.title)}</h1><iframe src="/embed?id={t.num_id}"></iframe>')
    if req.path == "/embed":
        script = ('var player = videojs("my-video");\nplayer.src(window.decodeSource(document.body.dataset.s));'
                  if req.scenario == "layout_changed" else
                  f'var videoSrc = "{t.playlist_url}";\nvar player = videojs("my-video");\n'
                  'player.src({src: videoSrc, type: "application/x-mpegURL"});')
        return html_page("embed", f'<video id="my-video" class="video-js" controls></video>\n<script>\n{script}\n</script>')
    return None
