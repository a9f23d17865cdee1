"""Listing pages of the JavBus-layout catalogues: an actress's, a maker's… titles, newest first.

JavBus lists the titles of an actress at ``/star/{id}``, of a maker at ``/studio/{id}``, of a
label at ``/label/{id}``, of a series at ``/series/{id}``, of a director at ``/director/{id}``
and of a search at ``/search/{query}``; page N > 1 appends ``/{N}``. Each title is an
``a.movie-box`` whose ``<date>`` elements hold the AVID and the release date; the next page is
linked as ``a#next`` in ``ul.pagination``. Past the last page (or for an unknown id) the site
answers its 404 page.

A listing page has the same typed outcomes as a title page (``sources.base``): a page with
items is found, 404 is :class:`SourceNotFound`, a challenge / 403 / 451 / 429 is
:class:`SourceBlocked`, 5xx is :class:`UpstreamError`, and a 200 page without the item grid is
:class:`LayoutChanged`. Requests go through the site's paced client, so every worker keeps the
catalogue's own interval (``RedisPacer``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from parsel import Selector

from pipeline.avid import parse as parse_avid
from pipeline.errors import (InvalidAvid, LayoutChanged, SourceBlocked, SourceError, UnresolvableHost,
                             UpstreamError)
from pipeline.status import status_error
from sources.base import PARSE_ERRORS
from sources.javbus import JavBusScraper

__all__ = ["KIND_PATHS", "ListingItem", "ListingPage", "CatalogueListing", "listing_path", "parse_listing"]

# Subscription kind -> the JavBus path segment of its listing.
KIND_PATHS = {"actress": "star", "maker": "studio", "label": "label", "series": "series",
              "director": "director", "search": "search"}
# Item tags that say which edition a title has (FIELD_NOTES §3: -C is Chinese subtitles).
TAG_EDITIONS = {"字幕": "C", "中文字幕": "C", "無碼流出": "UC"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ListingItem:
    avid: str  # the canonical code (pipeline.avid)
    title: str
    release_date: str = ""  # YYYY-MM-DD or ""
    tags: tuple[str, ...] = ()

    @property
    def editions(self) -> frozenset[str]:
        """The editions the listing shows for this title; "regular" is always there."""
        return frozenset({"regular", *(TAG_EDITIONS[t] for t in self.tags if t in TAG_EDITIONS)})


@dataclass
class ListingPage:
    url: str
    items: list[ListingItem] = field(default_factory=list)
    has_next: bool = False
    skipped: int = 0  # items whose code is not an AVID we accept (never queued)


def listing_path(kind: str, key: str, page: int = 1) -> str:
    """``/star/abc`` or ``/search/ABC/3``: the path of page ``page`` of a listing.

    Raises:
        ValueError: an unknown kind or an empty key.
    """
    if kind not in KIND_PATHS:
        raise ValueError(f"unknown listing kind {kind!r}; one of {', '.join(KIND_PATHS)}")
    key = key.strip()
    if not key:
        raise ValueError("a listing needs an id or a query")
    path = f"/{KIND_PATHS[kind]}/{quote(key, safe='')}"
    return path if page <= 1 else f"{path}/{page}"


def parse_listing(html: str, *, url: str, source: str) -> ListingPage:
    """The titles of one listing page, in the page's order (newest first).

    Raises:
        LayoutChanged: no item grid, or items without an AVID in ``<date>``.
    """
    sel = Selector(text=html)
    boxes = sel.css("a.movie-box")
    if not boxes:
        if sel.css("#waterfall, .masonry"):
            raise LayoutChanged(source, detail=f"listing {url}: the grid has no movie-box items")
        raise LayoutChanged(source, detail=f"listing {url}: no item grid (a.movie-box) on the page")
    page = ListingPage(url=url)
    seen: set[str] = set()
    for box in boxes:
        dates = [d.strip() for d in box.css("date::text").getall() if d.strip()]
        if not dates:
            raise LayoutChanged(source, detail=f"listing {url}: an item has no <date> with its AVID")
        try:
            avid = parse_avid(dates[0])
        except InvalidAvid:
            page.skipped += 1
            continue
        code = avid.code
        if code in seen:
            continue
        seen.add(code)
        release = next((d for d in dates[1:] if _DATE.match(d)), "")
        title = (box.css("img::attr(title)").get("") or
                 (box.css("div.photo-info span::text").get("") or "")).strip()
        tags = tuple(t.strip() for t in box.css("div.item-tag button::text").getall() if t.strip())
        page.items.append(ListingItem(avid=code, title=title, release_date=release, tags=tags))
    page.has_next = bool(sel.css("ul.pagination a#next, a#next"))
    return page


class CatalogueListing(JavBusScraper):
    """A JavBus-layout catalogue read for its listing pages (same config, client and pacing)."""

    def listing(self, kind: str, key: str, page: int = 1) -> ListingPage:
        """Page ``page`` of the ``kind`` listing of ``key``.

        Raises:
            SourceNotFound: 404/410 (an unknown id, or past the last page).
            SourceBlocked, UpstreamError, LayoutChanged: as for title pages.
        """
        url = self.url(listing_path(kind, key, page))
        try:
            r = self.client.get(url, referer=self.base_url + "/", check=False)
        except UpstreamError as e:
            raise UpstreamError(self.name, detail=f"{url}: {e.detail}", status=e.status) from None
        except UnresolvableHost as e:
            raise UpstreamError(self.name, detail=e.reason) from e
        err = status_error(r.status, is_challenge=r.is_challenge)
        if err is not None:
            raise err(self.name, detail=f"{url}" + (" (challenge page)" if r.is_challenge else ""),
                      status=r.status)
        if "driver-verify" in r.url:
            raise SourceBlocked(self.name, detail="age verification page")
        try:
            return parse_listing(r.text, url=url, source=self.name)
        except SourceError:
            raise
        except PARSE_ERRORS as e:
            raise LayoutChanged(self.name, detail=f"{url}: {type(e).__name__}: {e}"[:200]) from e
