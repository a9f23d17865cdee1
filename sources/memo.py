"""Memo: the page names the title; the playlist sits at a fixed CDN path that must be checked."""

from __future__ import annotations

from parsel import Selector

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged, SourceNotFound
from sources.base import Found, VideoSource, mentions_avid, strip_avid

NAME = "memo"
DEFAULT_CDN = "https://video10.memojav.net"


def page_paths(avid: Avid) -> list[str]:
    return [f"/video/{avid.code}", f"/cn/{avid.code}", f"/{avid.code}"]


def parse_page(html: str, code: str) -> tuple[str, str]:
    """``(title, cover_url)``; the page must be about ``code``."""
    sel = Selector(text=html)
    og_title = sel.css('meta[property="og:title"]::attr(content)').get()
    if og_title is None:
        raise LayoutChanged(NAME, detail="no og:title on the page")
    if not mentions_avid(og_title, code):
        raise SourceNotFound(NAME, detail=f"page is about {og_title.strip()[:60]!r}")
    cover = sel.css('meta[property="og:image"]::attr(content)').get("").strip()
    return strip_avid(og_title, code), cover


def playlist_url(code: str, cdn_url: str = "") -> str:
    return f"{(cdn_url or DEFAULT_CDN).rstrip('/')}/stream/{code}/master.m3u8"


def is_playlist(text: str) -> bool:
    return text.lstrip("\ufeff \r\n\t").startswith("#EXTM3U")


class Memo(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        def attempt(page_url: str) -> tuple[str, str, str]:
            return (page_url, *parse_page(self.fetch(page_url, avid).text, avid.code))

        page_url, title, cover = self.first_found(avid, [self.url(p) for p in page_paths(avid)], attempt)
        return self.found(avid, page_url, self._verified(avid), title=title, cover_url=cover)

    def _verified(self, avid: Avid) -> str:
        """The CDN pattern is a guess until the CDN answers it with a playlist."""
        url = playlist_url(avid.code, self.cfg.cdn_url)
        try:
            r = self.fetch(url, avid, referer=self.base_url + "/")
        except SourceNotFound as e:
            raise SourceNotFound(NAME, avid.code, detail="page exists but the CDN has no playlist",
                                 status=e.status) from None
        if not is_playlist(r.text):
            raise LayoutChanged(NAME, avid.code, detail="CDN answer is not an HLS playlist")
        return url
