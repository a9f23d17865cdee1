"""How the resolve stage reports a refused or unresolvable URL from a source page.

A page pointing at a private address is that site's failure ("layout changed: page gave an
unsafe URL"); a playlist host that does not resolve is refused too (never handed to curl) but
reported as the site's upstream error naming the host, a retriable network failure that puts
the source in back-off, not a crash and not a layout change. ``.invalid`` names never resolve
(RFC 6761), so nothing here reaches the network.
"""

from __future__ import annotations

import pytest

from pipeline.avid import parse
from pipeline.config import HttpConfig, SourceConfig
from pipeline.errors import AllSourcesFailed, LayoutChanged, Retriable, UpstreamError
from sources.base import VideoSource

AVID = parse("SSRF-301")


class PagePointsAt(VideoSource):
    """A source whose page gives ``playlist`` (and ``cover``) as the video's URLs."""

    name = "pagesite"
    playlist = ""
    cover = ""

    def _resolve(self, avid):
        return self.found(avid, self.base_url + "/v", self.playlist, cover_url=self.cover)


def source(playlist: str, cover: str = "", *, allow_private: bool = False) -> PagePointsAt:
    src = PagePointsAt(SourceConfig(base_url="https://pagesite.invalid", weight=10, min_interval_s=0),
                       HttpConfig(allow_private_urls=allow_private, retries=0))
    src.playlist, src.cover = playlist, cover
    return src


def test_an_unresolvable_playlist_host_is_the_sources_upstream_error_naming_the_host():
    for allow_private in (False, True):
        with pytest.raises(UpstreamError) as e:
            source("https://cdn.no-such-host.invalid/v.m3u8", allow_private=allow_private).resolve(AVID)
        assert isinstance(e.value, Retriable)
        assert (e.value.source, e.value.avid) == ("pagesite", "SSRF-301")
        assert "host cdn.no-such-host.invalid does not resolve" in str(e.value), str(e.value)


def test_a_private_playlist_target_is_a_layout_change_naming_the_class():
    with pytest.raises(LayoutChanged) as e:
        source("http://100.64.0.7/v.m3u8").resolve(AVID)
    assert "page gave an unsafe URL: 100.64.0.7 is a non-public address (CGNAT 100.64.0.0/10)" in str(e.value)
    with pytest.raises(LayoutChanged, match=r"0x7f\.1.*not a canonical IPv4"):
        source("http://0x7f.1/v.m3u8").resolve(AVID)


def test_an_unresolvable_or_private_cover_is_dropped_and_the_playlist_still_counts():
    # Only checked here, never fetched: found() builds the record.
    f = source("http://127.0.0.1:9/v.m3u8", "https://img.no-such-host.invalid/c.jpg", allow_private=True).resolve(AVID)
    assert f.cover_url == "" and f.playlist_url == "http://127.0.0.1:9/v.m3u8"
    src = source("https://cdn.no-such-host.invalid/v.m3u8")
    for cover in ("http://localhost./c.jpg", "http://[::1]/c.jpg", "http://2130706433/c.jpg"):
        assert src.safe_or_empty(cover) == ""


def test_the_resolve_stage_lists_the_unresolvable_source_with_its_reason():
    from sources.registry import resolve_any

    with pytest.raises(AllSourcesFailed) as e:
        resolve_any(AVID, [source("https://cdn.no-such-host.invalid/v.m3u8")])
    assert "pagesite: upstream error (refusing" not in str(e.value)
    assert "pagesite: upstream error (host cdn.no-such-host.invalid does not resolve" in str(e.value), str(e.value)


def test_the_download_stage_reports_an_unresolvable_playlist_host_as_retriable():
    """At download time the playlist host may have vanished from DNS: refused, nothing fetched,
    and a retriable upstream error (the actor retries) rather than a permanent unsafe URL."""
    import threading

    from pipeline.hls.engine import load_media_playlist
    from pipeline.http import HttpClient
    from pipeline.urlcheck import UrlGuard

    with HttpClient(HttpConfig(allow_private_urls=False, retries=0)) as client:
        with pytest.raises(UpstreamError, match=r"hls: upstream error \(playlist https://cdn.no-such-host.invalid/"
                                                r"v.m3u8: host cdn.no-such-host.invalid does not resolve"):
            load_media_playlist(client, "https://cdn.no-such-host.invalid/v.m3u8", guard=UrlGuard(False),
                                retries=0, cancel=threading.Event())
