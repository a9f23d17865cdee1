"""Kodi / Jellyfin / Emby ``<movie>`` NFO from the metadata JSON (FIELD_NOTES §4)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Mapping

from pipeline.editions import NAMES


def render(meta: Mapping[str, Any], title_from: str = "translated") -> bytes:
    """The NFO document for one AVID's metadata record. ``title_from`` (``translation.nfo_title``):
    ``translated`` puts the translated title and plot, when there are, in ``<title>`` and
    ``<plot>``; ``original`` keeps the catalogue's. ``<originaltitle>`` is the catalogue's own."""
    avid = meta.get("avid", "")
    movie = ET.Element("movie")

    def add(tag: str, value: Any, parent: ET.Element = movie, **attrs: str) -> ET.Element | None:
        if value in (None, "", []):
            return None
        el = ET.SubElement(parent, tag, attrs)
        el.text = str(value)
        return el

    title = meta.get("title") or meta.get("source_title") or avid
    translated = title_from == "translated"
    shown = (translated and meta.get("translated_title")) or title
    display = f"{avid} {shown}" if shown and not str(shown).startswith(avid) else shown
    add("title", display)
    add("originaltitle", meta.get("original_title") or title)
    add("sorttitle", avid)
    plot = (translated and meta.get("translated_plot")) or meta.get("plot") or shown
    add("plot", plot)
    add("outline", plot)
    date = meta.get("release_date") or ""
    add("premiered", date)
    add("releasedate", date)
    if len(date) >= 4 and date[:4].isdigit():
        add("year", date[:4])
    add("runtime", meta.get("runtime_min"))
    add("director", meta.get("director"))
    add("studio", meta.get("studio"))
    add("label", meta.get("label"))
    if meta.get("series"):
        s = ET.SubElement(movie, "set")
        add("name", meta["series"], s)
    for g in meta.get("genres") or []:
        add("genre", g)
        add("tag", g)
    edition = NAMES.get(meta.get("edition") or "", "")  # regular: no tag
    add("edition", edition)
    add("tag", edition)
    for i, a in enumerate(meta.get("actors") or []):
        el = ET.SubElement(movie, "actor")
        add("name", a.get("name"), el)
        add("role", "Actress", el)
        add("order", i, el)
        add("thumb", a.get("avatar_local") or a.get("avatar_url"), el)
    add("uniqueid", avid, type="avid", default="true")
    add("mpaa", "XXX")
    add("country", "Japan")
    art = ET.SubElement(movie, "art")
    add("poster", f"{avid}-poster.jpg", art)
    add("fanart", f"{avid}-fanart.jpg", art)
    add("thumb", f"{avid}-poster.jpg")
    ET.indent(movie)
    return b'<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n' + ET.tostring(movie, encoding="unicode").encode() + b"\n"
