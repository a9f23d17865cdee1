"""MissAV: ``/cn/<avid>`` pages whose p.a.c.k.e.d player script hides the surrit.com UUID.

By default only ``/cn/<avid>`` exists (no Chinese-subtitle edition), so an adapter walks past
two 404s first, as it does on the real site for most titles. A title given editions on this
site (``FixtureSite.add_edition``) also has ``/cn/<avid>-chinese-subtitle`` and
``/<avid>-chinese-subtitle`` (C) or ``/cn/<avid>-uncensored-leak`` (U), each pointing at the
edition's own stream. The CDN is the server's ``/surrit/<uuid>/``.
"""

from __future__ import annotations

import re
from html import escape

from tools.fixture_site.sites import html_page, lookup
from tools.fixture_site.titles import uuid_for
from tools.fixture_site.types import Reply, SiteRequest, Title

NAME = "missav"
KIND = "source"

_PAGE = re.compile(r"^(?:/dm13)?/cn/([a-z0-9-]+?)$|^/([a-z0-9-]+?-chinese-subtitle)$")
_SUFFIXES = {"-chinese-subtitle": "C", "-uncensored-leak": "U"}
_UNPACKER = (r"eval(function(p,a,c,k,e,d){e=function(c){return c.toString(36)};"
             r"if(!''.replace(/^/,String)){while(c--){d[c.toString(a)]=k[c]||c.toString(a)}"
             r"k=[function(e){return d[e]}];e=function(){return'\\w+'};c=1};while(c--){if(k[c])"
             r"{p=p.replace(new RegExp('\\b'+e(c)+'\\b','g'),k[c])}}return p}")


def packed_player(uuid: str) -> str:
    """The player script as Dean Edwards' packer leaves it: words replaced by base-36 indexes."""
    parts = uuid.split("-")
    words = (["m3u8"] + parts[::-1] + ["com", "surrit", "https", "video", "source", "playlist",
                                        "source842", "842x480", "source1280", "1280x720"])
    index = {w: _b36(i) for i, w in enumerate(words)}
    src = (f"source='https://surrit.com/{uuid}/playlist.m3u8';"
           f"source842='https://surrit.com/{uuid}/842x480/video.m3u8';"
           f"source1280='https://surrit.com/{uuid}/1280x720/video.m3u8';")
    p = re.sub(r"[A-Za-z0-9]+", lambda m: index.get(m.group(0), m.group(0)), src).replace("'", "\\'")
    return f"{_UNPACKER}('{p}',{len(words)},{len(words)},'{'|'.join(words)}'.split('|'),0,{{}}))"


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return digits[n] if n < 36 else _b36(n // 36) + digits[n % 36]


def handle(req: SiteRequest) -> Reply | None:
    m = _PAGE.match(req.path)
    if not m or req.scenario == "not_found":
        return None
    name, edition = m.group(1) or m.group(2), ""
    for suffix, code in _SUFFIXES.items():
        if name.endswith(suffix):
            name, edition = name[:-len(suffix)], code
    t = lookup(req, name)
    if t is None or (edition and edition not in req.editions.get(t.avid, ())):
        return None
    uuid = uuid_for(f"{t.avid}-{edition}") if edition else t.uuid
    # A changed site: the player no longer carries the surrit word list.
    script = ("window.__PLAYER__ = {sources: atob('bmV3LXNjaGVtZQ=='), drm: true};"
              if req.scenario == "layout_changed" else packed_player(uuid))
    return _page(req, t, script)


def _page(req: SiteRequest, t: Title, script: str) -> Reply:
    name = escape(f"{t.avid} {t.title}")
    head = (f'<meta property="og:title" content="{name}">\n'
            f'<meta property="og:image" content="{t.cover_url}">\n'
            f'<meta property="og:url" content="{req.base_url}/cn/{t.avid.lower()}">\n')
    body = (f'<div class="plyr__video-wrapper"><video id="player" playsinline data-poster="{t.cover_url}">'
            f'</video></div>\n<h1 class="text-base lg:text-lg text-nord6">{name}</h1>\n'
            f'<div class="text-secondary"><span>番號:</span> <span class="font-medium">{t.avid}</span></div>\n'
            f'<script type="text/javascript">\n{script}\n</script>')
    return html_page(f"{name} - MissAV | 免費高清AV在線看", body, head=head)
