"""AvToday: search → first video page → an ``m3u8`` URL in the page or in its one nested iframe."""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin

from parsel import Selector

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, absolute, first_result

NAME = "avtoday"

_RESULT = re.compile(r"""href=["']((?:https?://[^/"']+)?[^"']*/video/[^"']+)["']""")
_M3U8 = re.compile(r"""https?://[^\s"'<>\\]+?\.m3u8(?:\?[^\s"'<>\\]*)?""")


def parse_search(html: str, code: str) -> str:
    """The href of the first ``/video/…`` result that names ``code``."""
    return first_result(html, _RESULT, code, NAME)


def find_m3u8(html: str) -> str | None:
    """Any absolute ``….m3u8`` URL in the text (scripts often escape ``/`` as ``\\/``)."""
    m = _M3U8.search(html.replace("\\/", "/"))
    return m.group(0) if m else None


def parse_iframe(html: str, page_url: str, base_url: str) -> str | None:
    """The absolute URL of the first iframe, if any (root-relative ones live below ``base_url``)."""
    src = (Selector(text=html).css("iframe::attr(src)").get() or "").strip()
    if not src:
        return None
    if src.startswith("/") and not src.startswith("//"):
        return absolute(src, base_url)
    return urljoin(page_url, src)


class AvToday(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        search_url = self.url(f"/search?keyword={quote(avid.code)}")
        href = parse_search(self.fetch(search_url, avid).text, avid.code)
        page_url = self.safe(absolute(href, self.base_url))
        html = self.fetch(page_url, avid, referer=search_url).text
        if url := find_m3u8(html):
            return self.found(avid, page_url, url, referer=page_url)
        frame = parse_iframe(html, page_url, self.base_url)
        if frame is None:
            raise LayoutChanged(NAME, avid.code, detail="no m3u8 and no iframe on the video page")
        # One level only: the player iframe; deeper nesting is an ad chain, not the video.
        inner = self.fetch(self.safe(frame), avid, referer=page_url).text
        if url := find_m3u8(inner):
            return self.found(avid, page_url, url, referer=frame)
        raise LayoutChanged(NAME, avid.code, detail="no m3u8 in the page or its iframe")
