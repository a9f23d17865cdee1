"""GGJav: search → video page whose ``var l = '…'`` is base64 of JSON shifted by 0x58 per byte."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from pipeline.avid import Avid
from pipeline.errors import LayoutChanged
from sources.base import Found, VideoSource, first_result

NAME = "ggjav"

SERVER_PREFERENCE = ("ggjav", "mmsi01", "mmvh01")
SHIFT = 0x58

_RESULT = re.compile(r"""href=["'][^"']*/main/video\?id=(\d+)""")
_L = re.compile(r"""var\s+l\s*=\s*(['"])(?P<data>[A-Za-z0-9+/=\s]+)\1""")


def parse_search(html: str, code: str) -> str:
    """The video id of the first result that names ``code``."""
    return first_result(html, _RESULT, code, NAME)


def decode_servers(data: str) -> dict[str, Any]:
    """base64 → every byte minus 0x58 (mod 256) → JSON ``{server: link or [links]}``."""
    raw = base64.b64decode("".join(data.split()))
    servers = json.loads(bytes((b - SHIFT) % 256 for b in raw).decode("utf-8"))
    if not isinstance(servers, dict):
        raise ValueError("server map is not a JSON object")
    return servers


def encode_servers(servers: dict[str, Any]) -> str:
    """The inverse of :func:`decode_servers` (the fixture site writes pages with it)."""
    raw = json.dumps(servers).encode("utf-8")
    return base64.b64encode(bytes((b + SHIFT) % 256 for b in raw)).decode("ascii")


def pick_playlist(servers: dict[str, Any]) -> str:
    """The HLS link of the preferred server; mmsi serves ``….mp4`` whose HLS is ``….mp4/index.m3u8``."""
    order = [s for s in SERVER_PREFERENCE if s in servers] + [s for s in servers if s not in SERVER_PREFERENCE]
    for server in order:
        links = servers[server]
        for link in ([links] if isinstance(links, str) else links or []):
            if not isinstance(link, str) or not link.strip():
                continue
            link = link.strip()
            path, sep, query = link.partition("?")
            if server.startswith("mmsi") and path.endswith(".mp4"):
                link = path + "/index.m3u8" + sep + query
            if ".m3u8" in link:
                return link
    raise LayoutChanged(NAME, detail=f"no HLS link among servers {', '.join(servers) or '(none)'}")


def parse_video(html: str) -> str:
    m = _L.search(html)
    if not m:
        raise LayoutChanged(NAME, detail="no `var l` in the video page")
    return pick_playlist(decode_servers(m.group("data")))


class GGJav(VideoSource):
    name = NAME

    def _resolve(self, avid: Avid) -> Found:
        search_url = self.url(f"/main/search?string={quote(avid.code)}")
        vid = parse_search(self.fetch(search_url, avid).text, avid.code)
        page_url = self.url(f"/main/video?id={vid}")
        return self.found(avid, page_url, parse_video(self.fetch(page_url, avid, referer=search_url).text))
