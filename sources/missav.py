"""MissAV: the player script's p.a.c.k.e.d word list hides the video UUID on surrit.com."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from parsel import Selector

from pipeline.avid import Avid
from pipeline.editions import REGULAR
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, strip_avid

NAME = "missav"
DEFAULT_CDN = "https://surrit.com"

# The packer sorts words so that the URL's pieces sit together:
# ...|m3u8|<hex>|<hex>|<hex>|<hex>|<hex>|com|surrit|https|video|...
_WORDS = re.compile(r"m3u8\|((?:[0-9a-f]+\|)+)com\|surrit\|https\|video", re.I)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# The page of each edition (FIELD_NOTES §1): subtitled and leaked releases have pages of their own.
_EDITION_PATHS = {
    "C": ("/cn/{a}-chinese-subtitle", "/{a}-chinese-subtitle"),
    "U": ("/cn/{a}-uncensored-leak",),
    REGULAR: ("/cn/{a}", "/dm13/cn/{a}"),
}
EDITIONS = tuple(_EDITION_PATHS)


def edition_paths(avid: Avid, edition: str) -> list[str]:
    """Candidate pages of one edition of ``avid``, best first."""
    return [p.format(a=avid.lower) for p in _EDITION_PATHS[edition]]


def page_paths(avid: Avid) -> list[str]:
    """Candidate pages, best first; the leak page is asked for only with a -U/-UC edition."""
    paths = edition_paths(avid, "C") + edition_paths(avid, REGULAR)
    if avid.edition in ("U", "UC"):
        paths = edition_paths(avid, "U") + paths
    return paths


def parse_uuid(html: str) -> str:
    """The video UUID: the hex words between ``m3u8`` and ``com|surrit``, reversed, joined by ``-``."""
    m = _WORDS.search(html)
    if not m:
        raise LayoutChanged(NAME, detail="no surrit word list in the player script")
    uuid = "-".join(reversed(m.group(1).rstrip("|").split("|"))).lower()
    if not _UUID.match(uuid):
        raise LayoutChanged(NAME, detail=f"word list does not form a UUID: {uuid[:60]}")
    return uuid


def parse_meta(html: str, code: str) -> tuple[str, str]:
    """``(title, cover_url)`` from ``og:title`` (AVID prefix removed) and ``og:image``."""
    sel = Selector(text=html)
    title = sel.css('meta[property="og:title"]::attr(content)').get("")
    cover = sel.css('meta[property="og:image"]::attr(content)').get("")
    return strip_avid(title, code), cover.strip()


def playlist_url(uuid: str, cdn_url: str = "") -> str:
    return f"{(cdn_url or DEFAULT_CDN).rstrip('/')}/{uuid}/playlist.m3u8"


class MissAV(VideoSource):
    name = NAME
    editions = EDITIONS

    def _resolve_edition(self, avid: Avid, edition: str) -> Found:
        referer = self.url(f"/search/{avid.lower}")

        def attempt(page_url: str) -> Found:
            html = self.fetch(page_url, avid, referer=referer).text
            uuid = parse_uuid(html)
            title, cover = parse_meta(html, avid.code)
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base_url))
            return self.found(avid, page_url, playlist_url(uuid, self.cfg.cdn_url), title=title,
                              cover_url=cover, referer=self.base_url + "/",
                              headers={"Origin": origin}, edition=edition)

        return self.first_found(avid, [self.url(p) for p in edition_paths(avid, edition)], attempt)

