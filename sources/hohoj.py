"""HohoJ: search → video id → embed page with ``var videoSrc = "…"``."""

from __future__ import annotations

import re
from urllib.parse import quote

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, first_result

NAME = "hohoj"

_RESULT = re.compile(r"""href=["'][^"']*video\?id=(\d+)""")
_SRC = re.compile(r"""var\s+videoSrc\s*=\s*(['"])(?P<url>[^'"]+)\1""")


def parse_search(html: str, code: str) -> str:
    """The video id of the first result that names ``code``."""
    return first_result(html, _RESULT, code, NAME)


def parse_embed(html: str) -> str:
    m = _SRC.search(html)
    if not m:
        raise LayoutChanged(NAME, detail="no videoSrc in the embed page")
    return m.group("url").strip()


class HohoJ(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        search = self.fetch(self.url(f"/search?text={quote(avid.code)}"), avid).text
        vid = parse_search(search, avid.code)
        page_url = self.url(f"/video?id={vid}")
        embed = self.fetch(self.url(f"/embed?id={vid}"), avid, referer=page_url).text
        return self.found(avid, page_url, parse_embed(embed))
