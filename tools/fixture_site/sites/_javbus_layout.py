"""The page layout JavBus and its mirrors share (FIELD_NOTES §2), title pages and listings.

Listings (``/star|studio|label|series|director/{id}[/{page}]``, ``/search/{query}[/{page}]``)
hold the titles whose actress / maker / … has that id (``listing_id(name)``, the id the
title pages link to) or whose AVID or title contains the query, newest release first,
``PAGE_SIZE`` a page; past the last page, or with no title at all, the 404 page.
"""

from __future__ import annotations

import re
import zlib
from html import escape
from urllib.parse import quote

from tools.fixture_site import images
from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.types import Reply, SiteRequest, Title

_TITLE_PATH = re.compile(r"^/([A-Za-z0-9-]+)/?$")
_COVER_PATH = re.compile(r"^/pics/cover/([a-z0-9-]+)_b\.jpg$")
_LISTING_PATH = re.compile(r"^/(star|studio|label|series|director|search)/([^/]+)(?:/(\d+))?/?$")
SPAN_NAME_CHARS = 8
PAGE_SIZE = 30
_FIELD = {"studio": "studio", "label": "label", "series": "series", "director": "director"}  # the avatar span truncates names; the img title holds them whole


def cover_href(t: Title) -> str:
    """Relative, as on the real site: a scraper must prefix the domain itself."""
    return f"/pics/cover/{t.avid.lower()}_b.jpg"


def handle(req: SiteRequest, brand: str) -> Reply | None:
    if m := _COVER_PATH.match(req.path):
        t = lookup(req, m.group(1))
        return Reply(200, images.cover_jpeg(t.avid), "image/jpeg") if t else None
    if m := _LISTING_PATH.match(req.path):
        return _listing(req, brand, m.group(1), m.group(2), int(m.group(3) or 1))
    m = _TITLE_PATH.match(req.path)
    if not m:
        return None
    t = lookup(req, m.group(1))
    if req.scenario == "layout_changed":
        # A 200 page that does not name the AVID and has every field empty.
        return html_page(f"{brand}", '<div class="container"><h3></h3><div class="row movie">'
                                     '<div class="col-md-3 info"></div></div></div>')
    if t is None or req.scenario == "not_found":
        return html_page(f"404 Page Not Found! - {brand}",
                         '<div class="alert alert-danger"><h4>404 Page Not Found!</h4>'
                         '<p>沒有您要的結果！</p></div>', status=404)
    return html_page(escape(f"{t.avid} {t.title} - {brand}"), _body(req, t, brand), head=_head(t))


def _head(t: Title) -> str:
    desc = f"【發行日期】{t.release_date}，【長度】{t.runtime_min}分鐘，({t.avid}){t.title}"
    return (f'<meta name="description" content="{escape(desc)}">\n'
            f'<meta name="keywords" content="{escape(",".join([t.avid, *t.genres]))}">\n')


def listing_id(text: str) -> str:
    """The id of an actress / maker / label / series / director in links and listing URLs."""
    return f"{zlib.crc32(text.encode()):x}"


def listing_tags(t: Title) -> list[str]:
    """The item tags a listing shows: 高清 always, 字幕 (Chinese subtitles) on every third title."""
    return ["高清", "字幕"] if zlib.crc32(t.avid.encode()) % 3 == 0 else ["高清"]


def listing_titles(titles: dict[str, Title], kind: str, key: str) -> list[Title]:
    """The titles a listing holds, newest release first (then AVID, descending)."""
    if kind == "search":
        q = key.lower()
        hits = [t for t in titles.values() if q in t.avid.lower() or q in t.title.lower()]
    elif kind == "star":
        hits = [t for t in titles.values() if any(listing_id(a) == key for a, _ in t.actors)]
    else:
        hits = [t for t in titles.values() if listing_id(getattr(t, _FIELD[kind])) == key]
    return sorted(hits, key=lambda t: (t.release_date, t.avid), reverse=True)


def _listing(req: SiteRequest, brand: str, kind: str, key: str, page: int) -> Reply:
    if req.scenario == "layout_changed":
        return html_page(f"{brand}", '<div class="container"><div class="row"></div></div>')
    hits = [] if req.scenario == "not_found" else listing_titles(req.titles, kind, key)
    chunk = hits[(page - 1) * PAGE_SIZE: page * PAGE_SIZE] if page >= 1 else []
    if not chunk:
        return html_page(f"404 Page Not Found! - {brand}",
                         '<div class="alert alert-danger"><h4>404 Page Not Found!</h4>'
                         '<p>沒有您要的結果！</p></div>', status=404)
    items = "".join(
        f'<div class="item masonry-brick"><a class="movie-box" href="{req.base_url}/{t.avid}">'
        f'<div class="photo-frame"><img src="{cover_href(t)}" title="{escape(t.title)}"></div>'
        f'<div class="photo-info"><span>{escape(t.title)}<br><div class="item-tag">'
        + "".join(f'<button class="btn btn-xs btn-primary" disabled="disabled">{g}</button>'
                  for g in listing_tags(t))
        + f'</div><date>{t.avid}</date> / <date>{t.release_date}</date></span></div></a></div>\n'
        for t in chunk)
    base = f"/{kind}/{quote(key, safe='')}"
    pages = "".join(f'<li{" class=active" if n == page else ""}><a href="{base}{"" if n == 1 else f"/{n}"}">'
                    f'{n}</a></li>' for n in range(max(1, page - 2), page + 1))
    if page * PAGE_SIZE < len(hits):
        pages += f'<li><a id="next" href="{base}/{page + 1}">下一頁</a></li>'
    return html_page(escape(f"{key} - 影片 - {brand}"),
                     f'<nav class="navbar"><a class="navbar-brand" href="{req.base_url}/">{brand}</a></nav>\n'
                     f'<div class="container-fluid"><div class="row"><div id="waterfall">{items}</div></div>\n'
                     f'<div class="text-center hidden-xs"><ul class="pagination pagination-lg">{pages}</ul></div></div>')


def _link(req: SiteRequest, kind: str, text: str) -> str:
    return f'<a href="{req.base_url}/{kind}/{listing_id(text)}">{escape(text)}</a>'


def _body(req: SiteRequest, t: Title, brand: str) -> str:
    info = [
        f'<p><span class="header">識別碼:</span> <span style="color:#CC0000;">{t.avid}</span></p>',
        f'<p><span class="header">發行日期:</span> {t.release_date}</p>',
        f'<p><span class="header">長度:</span> {t.runtime_min}分鐘</p>',
        f'<p><span class="header">導演:</span> {_link(req, "director", t.director)}</p>',
        f'<p><span class="header">製作商:</span> {_link(req, "studio", t.studio)}</p>',
        f'<p><span class="header">發行商:</span> {_link(req, "label", t.label)}</p>',
        f'<p><span class="header">系列:</span> {_link(req, "series", t.series)}</p>',
        '<p class="header">類別:</p>',
        "<p>" + "".join(f'<span class="genre"><label><input type="checkbox" name="gr_sel" value="{i}">'
                        f'{_link(req, "genre", g)}</label></span>' for i, g in enumerate(t.genres)) + "</p>",
        # Star links are span.genre too, but without a label: a genre selector must skip them.
        '<p class="star-show"><span class="header">演員</span>:</p>',
        "<p>" + "".join(f'<span class="genre" onmouseover="hoverdiv(event,\'star_{i}\')">'
                        f'{_link(req, "star", a)}</span>' for i, (a, _) in enumerate(t.actors)) + "</p>",
    ]
    avatars = "".join(
        f'<a class="avatar-box" href="{req.base_url}/star/{i}"><div class="photo-frame">'
        f'<img src="{src}" title="{escape(a)}"></div>'
        f'<span>{escape(a[:SPAN_NAME_CHARS] + ("..." if len(a) > SPAN_NAME_CHARS else ""))}</span></a>'
        for i, (a, src) in enumerate(t.actors))
    samples = "".join(
        f'<a class="sample-box" href="{s}"><div class="photo-frame">'
        f'<img src="{s}" title="{escape(t.avid)} sample {i}"></div></a>'
        for i, s in enumerate(t.samples, 1))
    return (f'<nav class="navbar"><a class="navbar-brand" href="{req.base_url}/">{brand}</a></nav>\n'
            f'<div class="container"><h3>{escape(t.avid)} {escape(t.title)}</h3>\n'
            '<div class="row movie"><div class="col-md-9 screencap">'
            f'<a class="bigImage" href="{cover_href(t)}"><img src="{cover_href(t)}" title="{escape(t.title)}"></a>'
            '</div>\n<div class="col-md-3 info">\n' + "\n".join(info) + "\n</div></div>\n"
            f'<h4>演員</h4><div id="avatar-waterfall">{avatars}</div>\n'
            f'<h4>樣品圖像</h4><div id="sample-waterfall">{samples}</div>\n</div>')
