"""JavBus and its mirrors (busdmm, dmmsee): one page layout, ``{base}/{AVID}``, zh-TW labels."""

from __future__ import annotations

import re
from typing import ClassVar, Mapping

from parsel import Selector

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged, SourceBlocked, SourceNotFound
from sources.base import Actor, CatalogueEntry, Site, absolute, mentions_avid, strip_avid

NAME = "javbus"
FC2_DETAIL = "no catalogue entry (FC2 titles are not on JavBus)"

# Technical tags, not genres a user browses by (FIELD_NOTES §2).
GENRE_BLACKLIST = frozenset({"FHD", "高畫質", "單體作品", "DMM獨家", "4K", "薄馬賽克", "數位馬賽克",
                             "企畫", "纪录片", "高", "MGS bonus"})
PLACEHOLDER_AVATAR = "nowprinting.gif"

_LABELS = {"發行日期": "release_date", "長度": "runtime", "導演": "director", "製作商": "studio",
           "發行商": "label", "系列": "series", "識別碼": "code"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MINUTES = re.compile(r"(\d+)\s*分鐘")
_SUFFIX = re.compile(r"\s*-\s*JavBus\s*$", re.I)


def parse_entry(html: str, code: str, *, base_url: str, source: str = NAME,
                page_url: str = "") -> CatalogueEntry:
    """A :class:`CatalogueEntry` from a JavBus-layout page, which must be about ``code``.

    Raises:
        SourceNotFound: the page is about another AVID.
        LayoutChanged: the info block is gone, or the page carries no catalogue fields.
    """
    sel = Selector(text=html)
    info = _info(sel)
    description = sel.css('meta[name="description"]::attr(content)').get("")
    page_title = sel.css("title::text").get("").strip()
    h3 = " ".join(sel.css("h3 ::text").getall()).strip()
    shown = info.get("code", "")
    if shown:
        if shown.upper() != code.upper():
            raise SourceNotFound(source, detail=f"page is about {shown[:30]}, not {code}")
    elif not any(mentions_avid(t, code) for t in (page_title, h3, description)):
        if not info and not h3:
            raise LayoutChanged(source, detail="no info block on the page")
        raise SourceNotFound(source, detail=f"page does not mention {code}")

    if not info:
        raise LayoutChanged(source, detail="no info block (span.header labels) on the page")
    title = strip_avid(_SUFFIX.sub("", page_title), code) or strip_avid(h3, code)
    if not title:
        m = re.search(rf"\({re.escape(code)}\)\s*(.+)$", description, re.I)
        title = m.group(1).strip() if m else ""
    release = _first(_DATE, info.get("release_date", "")) or _first(
        re.compile(r"【發行日期】\s*(\d{4}-\d{2}-\d{2})"), description, 1)
    minutes = _first(_MINUTES, info.get("runtime", ""), 1) or _first(
        re.compile(r"【長度】\s*(\d+)\s*分鐘"), description, 1)

    genres = []
    for g in sel.css("span.genre label a::text").getall():
        g = g.strip()
        if g and g not in GENRE_BLACKLIST and g not in genres:
            genres.append(g)
    actors = []
    for img in sel.css("a.avatar-box img"):
        name = (img.attrib.get("title") or "").strip() or " ".join(
            img.xpath("ancestor::a[1]//span//text()").getall()).strip()  # truncated, a last resort
        if not name:
            continue
        src = (img.attrib.get("src") or "").strip()
        avatar = "" if PLACEHOLDER_AVATAR in src else absolute(src, base_url)
        actors.append(Actor(name=name, avatar_url=avatar))

    entry = CatalogueEntry(
        source=source, avid=code, title=title, release_date=release,
        runtime_min=int(minutes) if minutes else None,
        director=info.get("director", ""), studio=info.get("studio", ""),
        label=info.get("label", ""), series=info.get("series", ""),
        genres=genres, actors=actors,
        cover_url=absolute(sel.css("a.bigImage::attr(href)").get(""), base_url),
        samples=[absolute(h, base_url) for h in sel.css("a.sample-box::attr(href)").getall() if h.strip()],
        page_url=page_url,
    )
    if not entry.title or not (entry.cover_url or entry.release_date or entry.studio or entry.actors):
        raise LayoutChanged(source, detail="page has no catalogue fields")
    return entry


def _info(sel: Selector) -> dict[str, str]:
    """``span.header`` label → the value after it (its ``<a>`` text when there is one)."""
    out: dict[str, str] = {}
    for p in sel.xpath("//p[span[contains(concat(' ', normalize-space(@class), ' '), ' header ')]]"):
        label = p.css("span.header::text").get("").strip().rstrip(":：").strip()
        key = _LABELS.get(label)
        if not key:
            continue
        linked = " ".join(t.strip() for t in p.css("a::text").getall() if t.strip())
        if linked:
            value = linked
        else:
            texts = p.xpath("./node()[not(self::span[contains(@class, 'header')])]//text()"
                            " | ./text()").getall()
            value = " ".join(t.strip() for t in texts if t.strip())
        out[key] = value.strip()
    return out


def _first(rx: re.Pattern[str], text: str, group: int = 0) -> str:
    m = rx.search(text or "")
    return m.group(group) if m else ""


class JavBusScraper(Site):
    """A catalogue site with the JavBus layout; the instance takes its name from the config."""

    name = NAME
    extra_headers: ClassVar[Mapping[str, str]] = {"Accept-Language": "zh-TW,zh;q=0.9"}

    def scrape(self, avid: Avid) -> CatalogueEntry:
        """Catalogue metadata of ``avid``; only a page about this AVID with real fields counts.

        Raises:
            SourceNotFound: no page, a page about another AVID, or an FC2 AVID (never fetched).
            SourceBlocked, UpstreamError, LayoutChanged: as for video sources.
        """
        if avid.is_fc2:
            raise SourceNotFound(self.name, avid.code, detail=FC2_DETAIL)
        return self._guard(avid, lambda: self._scrape(avid))

    def _scrape(self, avid: Avid) -> CatalogueEntry:
        page_url = self.url(f"/{avid.code}")
        r = self.fetch(page_url, avid, referer=self.base_url + "/")
        if "driver-verify" in r.url:
            raise SourceBlocked(self.name, avid.code, detail="age verification page")
        entry = parse_entry(r.text, avid.code, base_url=self.base_url, source=self.name,
                            page_url=page_url)
        entry.cover_url = self.safe_or_empty(entry.cover_url)
        entry.samples = [u for u in map(self.safe_or_empty, entry.samples) if u]
        for a in entry.actors:
            a.avatar_url = self.safe_or_empty(a.avatar_url)
        return entry
