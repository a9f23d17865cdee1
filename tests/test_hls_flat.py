"""Issue 13, the HLS engine's footprint: exactly one request per segment on a clean run, and
segment bodies held in a fixed set of per-worker buffers (never one per segment).

Real HTTP (FixtureSite) and real ffmpeg; the request counts are the fixture CDN's own.
"""

from __future__ import annotations

import pytest

from pipeline.config import HttpConfig
from pipeline.hls import HlsOptions, download
from tools.fixture_site import FixtureSite

PRIVATE = HttpConfig(allow_private_urls=True, timeout_s=10, retries=1)
BIG = "FLAT-001"  # 6 AES-128 segments of ~1 MB
MANY = "FLAT-002"  # 40 AES-128 segments of ~100 KB


@pytest.fixture(scope="module")
def fx():
    site = FixtureSite.start(titles=())
    try:
        site.add_title(BIG, stream_kind="aes128", duration_s=12.0, segment_s=2.0, video_kbps=4000)
        site.add_title(MANY, stream_kind="aes128", duration_s=40.0, segment_s=1.0, video_kbps=800)
        yield site
    finally:
        site.stop()


@pytest.fixture(autouse=True)
def clean_site(fx):
    fx.reset()
    yield


def media_url(fx: FixtureSite, avid: str) -> str:
    return f"{fx.base_url}/cdn/{avid}/v1/index.m3u8"


def test_clean_run_makes_one_request_per_segment_and_no_more(fx, tmp_path):
    """Playlist + key + one GET per segment. The latency (no fault: every response is whole)
    keeps the last transfers waiting while other workers are idle, which is when an engine
    that splits transfers eagerly sends ranged requests for their second halves."""
    stream = fx.stream(BIG)
    fx.set_faults(latency_ms=300)
    result = download(media_url(fx, BIG), tmp_path / "out.mp4", part_dir=tmp_path / "parts",
                      options=HlsOptions(http=PRIVATE, concurrency=4))
    assert result.segments_fetched == stream.segments == 6
    stats = fx.stats()
    assert stats["playlists"][BIG] == {"v1": 1}
    assert stats["keys"][BIG] == 1
    assert stats["segments"][BIG] == {str(n): 1 for n in range(stream.segments)}
    assert stats["requests"]["cdn"] == 1 + 1 + stream.segments
    assert stats["status"] == {"200": 1 + 1 + stream.segments}  # no 206: no byte ranges


def test_retries_are_the_only_extra_requests(fx, tmp_path):
    """10 % of segment responses are 500s (a fault): one more request per failure, no other."""
    stream = fx.stream(MANY)
    fx.set_faults(error_rate=0.10, seed=7)
    download(media_url(fx, MANY), tmp_path / "out.mp4", part_dir=tmp_path / "parts",
             options=HlsOptions(http=PRIVATE, concurrency=4))
    stats = fx.stats()
    failures = stats["status"].get("500", 0)
    assert failures >= 2  # (the seed makes this run have some)
    assert sorted(int(k) for k in stats["segments"][MANY]) == list(range(stream.segments))
    assert stats["segment_requests"][MANY] == stream.segments + failures
    assert stats["requests"]["cdn"] == 1 + 1 + stream.segments + failures
