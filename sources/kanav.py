"""KanAV (a MacCMS site): search → play page whose player JSON holds a base64, URL-quoted ``url``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, unquote

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, absolute, first_result

NAME = "kanav"

_RESULT = re.compile(r"""href=["']([^"']*/index\.php/vod/play[^"']*\.html)""")
_URL = re.compile(r'"url"\s*:\s*"((?:[^"\\]|\\.)*)"')


def parse_search(html: str, code: str) -> str:
    """The href of the first play link that names ``code``."""
    return first_result(html, _RESULT, code, NAME)


def decode_url(value: str) -> str:
    """MacCMS ``encrypt=2``: base64 of the URL-quoted address. A plain URL is taken as it is."""
    if value.startswith(("http://", "https://")):
        return unquote(value)
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except binascii.Error:
        raise LayoutChanged(NAME, detail="player url is neither base64 nor a URL") from None
    return unquote(raw.decode("utf-8"))


def parse_play(html: str) -> str:
    """The playlist URL from the play page's player JSON."""
    m = _URL.search(html)
    if not m:
        raise LayoutChanged(NAME, detail='no "url" in the player JSON')
    url = decode_url(json.loads(f'"{m.group(1)}"'))
    if ".m3u8" not in url:
        raise LayoutChanged(NAME, detail=f"player url is not HLS: {url[:80]}")
    return url


class KanAV(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        search_url = self.url(f"/index.php/vod/search.html?wd={quote(avid.code)}&by=time_add")
        href = parse_search(self.fetch(search_url, avid).text, avid.code)
        page_url = self.safe(absolute(href, self.base_url))  # root-relative links live below a prefixed base
        return self.found(avid, page_url, parse_play(self.fetch(page_url, avid, referer=search_url).text))

