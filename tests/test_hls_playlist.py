"""parse_playlist / choose_variant on fixture playlists: pure, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import PlaylistError
from pipeline.hls import ByteRange, MasterPlaylist, MediaPlaylist, choose_variant, parse_playlist

FIX = Path(__file__).parent / "fixtures" / "hls"
BASE = "https://cdn.example.com/v/abc/index.m3u8"


def load(name: str, base: str = BASE) -> MasterPlaylist | MediaPlaylist:
    return parse_playlist((FIX / name).read_text(), base)


def test_master_variants_resolved_and_chosen():
    pl = load("master.m3u8", "https://cdn.example.com/v/master.m3u8")
    assert isinstance(pl, MasterPlaylist)
    assert [v.url for v in pl.variants] == [
        "https://cdn.example.com/v/360p/index.m3u8",
        "https://cdn.example.com/v/720p/index.m3u8",
        "https://cdn.example.com/v/1080p/index.m3u8?token=abc",
    ]
    v720 = pl.variants[1]
    assert v720.bandwidth == 2_800_000 and v720.average_bandwidth == 2_500_000
    assert v720.resolution == (1280, 720) and v720.codecs == "avc1.4d401f,mp4a.40.2"
    assert v720.frame_rate == pytest.approx(29.97)
    assert choose_variant(pl).height == 1080
    assert choose_variant(pl, "highest").height == 1080
    assert choose_variant(pl, "lowest").height == 360
    assert choose_variant(pl, "720").height == 720
    assert choose_variant(pl, "1000p").height == 720
    assert choose_variant(pl, "240").height == 360  # nothing fits: the smallest
    with pytest.raises(PlaylistError):
        choose_variant(pl, "best-please")


def test_variant_tie_on_bandwidth_broken_by_resolution():
    text = ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\na.m3u8\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=1280x720\nb.m3u8\n")
    pl = parse_playlist(text, "http://h/x/m.m3u8")
    assert choose_variant(pl).url == "http://h/x/b.m3u8"


def test_media_aes_with_explicit_iv():
    pl = load("media_aes_iv.m3u8")
    assert isinstance(pl, MediaPlaylist)
    assert pl.endlist and pl.playlist_type == "VOD" and pl.media_sequence == 7
    assert [s.url for s in pl.segments] == [
        "https://cdn.example.com/v/abc/seg000.ts",
        "https://cdn.example.com/v/abc/seg001.ts",
        "https://cdn.example.com/abs/seg002.ts?sig=1",
    ]
    assert [s.media_sequence for s in pl.segments] == [7, 8, 9]
    assert pl.duration_s == pytest.approx(10.5)
    assert pl.segments[2].title == "first title, with comma"
    key = pl.segments[0].key
    assert key is not None and key.method == "AES-128"
    assert key.uri == "https://cdn.example.com/v/abc/key.bin"
    assert key.iv == bytes(range(16))
    assert key.iv_for(8) == bytes(range(16))  # explicit IV wins over the sequence number
    assert all(s.key == key for s in pl.segments)


def test_media_aes_without_iv_uses_media_sequence_and_method_none_clears():
    pl = load("media_aes_noiv.m3u8")
    s0, s1, s2 = pl.segments
    assert s0.key is not None and s0.key.iv is None
    assert s0.key.uri == "https://keys.example.com/k?id=9"
    assert s0.key.iv_for(s0.media_sequence) == (300).to_bytes(16, "big")
    assert s1.key.iv_for(s1.media_sequence) == (301).to_bytes(16, "big")
    assert s2.key is None
    assert s2.duration_s == pytest.approx(3.2)
    assert s0.url.endswith("/video0.jpeg")


def test_media_fmp4_map_and_discontinuity():
    pl = load("media_fmp4.m3u8")
    assert pl.is_fmp4 and not pl.encrypted
    s0, s1, s2 = pl.segments
    assert s0.init is not None and s0.init.url == "https://cdn.example.com/v/abc/init.mp4"
    assert s0.init is s1.init or s0.init == s1.init
    assert s2.init is not None and s2.init.url.endswith("/init2.mp4")
    assert s2.init.byterange == ByteRange(720, 0)
    assert (s0.discontinuity_seq, s1.discontinuity_seq, s2.discontinuity_seq) == (0, 0, 1)
    assert len(pl.inits) == 2


def test_media_byterange_offsets_implicit_per_resource():
    pl = load("media_byterange.m3u8")
    brs = [s.byterange for s in pl.segments]
    assert brs == [ByteRange(457404, 0), ByteRange(437476, 457404), ByteRange(1000, 5000),
                   ByteRange(188, 457404 + 437476)]
    assert brs[1].header == "bytes=457404-894879"
    assert pl.segments[0].url == pl.segments[1].url


def test_media_discontinuity_sequence_counts_from_tag():
    pl = load("media_discontinuity.m3u8")
    assert [s.discontinuity_seq for s in pl.segments] == [2, 3, 4, 4]
    assert pl.segments[1].url.endswith("/ads/ad-000.ts")
    assert pl.endlist and pl.playlist_type == ""


def test_vod_type_without_endlist_is_accepted():
    pl = load("vod_no_endlist.m3u8")
    assert len(pl.segments) == 1


@pytest.mark.parametrize("name, words", [
    ("live.m3u8", "live playlist"),
    ("event_open.m3u8", "live playlist"),
    ("sample_aes.m3u8", "unsupported encryption SAMPLE-AES"),
    ("empty.m3u8", "no segment"),
    ("not_a_playlist.html", "not an HLS playlist"),
])
def test_unusable_playlists_are_typed_errors(name, words):
    with pytest.raises(PlaylistError, match=words):
        load(name)


@pytest.mark.parametrize("text, words", [
    ("", "empty playlist"),
    ("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",KEYFORMAT=\"com.widevine\"\n#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n",
     "KEYFORMAT"),
    ("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128\n#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n", "without URI"),
    ("#EXTM3U\na.ts\n#EXT-X-ENDLIST\n", "without #EXTINF"),
    ("#EXTM3U\n#EXTINF:abc,\na.ts\n#EXT-X-ENDLIST\n", "bad #EXTINF"),
    ("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0xZZ\n#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n", "bad IV"),
])
def test_malformed_playlists(text, words):
    with pytest.raises(PlaylistError, match=words):
        parse_playlist(text, BASE)


def test_crlf_and_bom_tolerated():
    text = "\ufeff#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:2.0,\r\na.ts\r\n#EXT-X-ENDLIST\r\n"
    pl = parse_playlist(text, "http://h/p/i.m3u8")
    assert pl.segments[0].url == "http://h/p/a.ts"
