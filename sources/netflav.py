"""NetFlav: a Next.js page; everything is in ``<script id="__NEXT_DATA__">``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from parsel import Selector

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged, SourceNotFound
from sources.base import Found, VideoSource, strip_avid

NAME = "netflav"

_COVER_KEYS = ("preview", "poster", "cover", "thumbnail", "preview_hp")


def parse_next_data(html: str, code: str) -> tuple[str, str, str]:
    """``(playlist_url, title, cover_url)`` from ``props.initialState.video.data``."""
    raw = Selector(text=html).css("script#__NEXT_DATA__::text").get()
    if raw is None:
        raise LayoutChanged(NAME, detail="no __NEXT_DATA__ script")
    video = json.loads(raw)["props"]["initialState"]["video"]
    data: dict[str, Any] | None = video.get("data")
    if not data:
        # The app renders the page shell for unknown ids and leaves the data empty.
        raise SourceNotFound(NAME, detail="page has no video data")
    srcs = [s.get("src", "") if isinstance(s, dict) else s for s in data.get("srcs") or []]
    hls = [s.strip() for s in srcs if isinstance(s, str) and ".m3u8" in s]
    if not hls:
        # The title is there but only as embeds of other hosts: nothing this source can give.
        raise SourceNotFound(NAME, detail=f"no HLS stream among {len(srcs)} sources")
    cover = next((data[k] for k in _COVER_KEYS if isinstance(data.get(k), str) and data[k]), "")
    return hls[0], strip_avid(str(data.get("title") or ""), code), cover


class NetFlav(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        page_url = self.url(f"/video?id={quote(avid.code)}")
        playlist, title, cover = parse_next_data(self.fetch(page_url, avid).text, avid.code)
        return self.found(avid, page_url, playlist, title=title, cover_url=cover)
