"""Issue 13, the HLS engine's footprint: exactly one request per segment on a clean run, and
segment bodies held in a fixed set of per-worker buffers (never one per segment).

Real HTTP (FixtureSite) and real ffmpeg; the request counts are the fixture CDN's own.
"""

from __future__ import annotations

import threading

import pytest

from pipeline.config import HttpConfig
from pipeline.hls import HlsOptions, download
from pipeline.hls.buffers import MIN_CAPACITY, SPARE_BYTES, BufferPool, SegmentBuffer
from pipeline.hls.fetch import Fetcher, RateLimiter, UrlGuard
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


def test_segment_bodies_live_in_one_reused_buffer_per_worker(fx, tmp_path):
    """40 segments on 4 connections: 4 buffers, each about one segment big, whatever the count."""
    stream = fx.stream(MANY)
    biggest = max((stream.dir / f).stat().st_size for f in stream.segment_files)
    result = download(media_url(fx, MANY), tmp_path / "out.mp4", part_dir=tmp_path / "parts",
                      options=HlsOptions(http=PRIVATE, concurrency=4))
    assert result.segments_fetched == stream.segments == 40
    assert 1 <= result.buffers <= 4
    # a buffer starts at MIN_CAPACITY and grows to twice what it needs
    assert result.buffer_bytes <= result.buffers * max(2 * (biggest + SPARE_BYTES), MIN_CAPACITY)


def test_a_fetcher_receives_every_body_into_the_same_memory(fx):
    stream = fx.stream(MANY)
    base = media_url(fx, MANY).rsplit("/", 1)[0]
    f = Fetcher(PRIVATE, {}, guard=UrlGuard(True), limiter=RateLimiter(0), stop=threading.Event(),
                stall_timeout_s=5)
    try:
        bodies = []
        for name in stream.segment_files[:10]:
            body = f.get(f"{base}/{name}")
            assert bytes(body) == (stream.dir / name).read_bytes()
            bodies.append(body.obj)
        # one block of memory from the second body on (a segment a bit bigger may grow it once)
        assert len({id(b) for b in bodies}) == 1 and f.buffer.grown == 0  # (~100 KB bodies)
    finally:
        f.close()


def test_buffer_pool_never_makes_more_than_its_limit():
    pool = BufferPool(2)
    a, b = pool.take(), pool.take()
    with pytest.raises(RuntimeError, match="all 2 segment buffers are in use"):
        pool.take()
    a.append(b"x" * 1000)
    pool.give(a)
    assert pool.take() is a and a.size == 0 and pool.created == 2 and pool.peak_in_use == 2
    pool.give(a)
    pool.give(b)


def test_segment_buffer_keeps_its_memory_and_room_for_in_place_decryption():
    buf = SegmentBuffer()
    body = MIN_CAPACITY + 1000  # bigger than a new buffer: it must grow, once
    for _ in range(20):
        buf.reset()
        for _ in range(body // 30_000 + 1):
            buf.append(b"\x47" * 30_000)
        assert buf.size > body and len(buf.writable()) >= buf.size + SPARE_BYTES
    assert buf.grown == 1  # while the first body came, never after
    assert buf.capacity <= 2 * (buf.size + SPARE_BYTES)
