"""Jable: the video page carries ``var hlsUrl = '…'`` in an inline script."""

from __future__ import annotations

import re

from parsel import Selector

from pipeline.avid import Avid
from pipeline.editions import REGULAR
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, strip_avid

NAME = "jable"

_HLS = re.compile(r"""var\s+hlsUrl\s*=\s*(['"])(?P<url>[^'"]+)\1""")
_SUFFIX = re.compile(r"(?:^|\s*[-|]\s*)Jable\.TV.*$", re.I)


def parse_page(html: str, code: str) -> tuple[str, str, str]:
    """``(playlist_url, title, cover_url)`` of a Jable video page."""
    m = _HLS.search(html)
    if not m:
        raise LayoutChanged(NAME, detail="no hlsUrl in the page")
    sel = Selector(text=html)
    title = _SUFFIX.sub("", sel.css("title::text").get("").strip())
    if not title:
        title = " ".join(sel.css("h4.title ::text").getall()).strip()
    cover = sel.css('meta[property="og:image"]::attr(content)').get("").strip()
    return m.group("url").strip(), strip_avid(title, code), cover


def page_path(avid: Avid, edition: str = REGULAR) -> str:
    """The video page; the subtitled release has its own, ``/videos/abc-123-c/`` (FIELD_NOTES §1)."""
    return f"/videos/{avid.lower}-c/" if edition == "C" else f"/videos/{avid.lower}/"


class Jable(VideoSource):
    name = NAME
    editions = ("C", REGULAR)

    def _resolve_edition(self, avid: Avid, edition: str) -> Found:
        page_url = self.url(page_path(avid, edition))
        html = self.fetch(page_url, avid, referer=self.url(f"/search/{avid.lower}")).text
        playlist, title, cover = parse_page(html, avid.code)
        return self.found(avid, page_url, playlist, title=title, cover_url=cover, edition=edition)
