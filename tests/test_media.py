"""tools/fixture_site/media.py: real streams, decoded by the bundled ffmpeg."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tools.fixture_site.media import FFMPEG_INPUT_ARGS, KINDS, ffmpeg_exe, fake_png_header, make_stream


def _decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpad = padding.PKCS7(128).unpadder()
    return unpad.update(padded) + unpad.finalize()


def _is_ts(data: bytes) -> bool:
    return len(data) % 188 == 0 and len(data) > 0 and all(data[i] == 0x47 for i in range(0, len(data), 188))


def _playlist_sum(path: Path) -> float:
    return sum(float(line.split(":", 1)[1].rstrip(",")) for line in path.read_text().splitlines()
               if line.startswith("#EXTINF:"))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_decodes_and_lasts_its_duration(kind: str) -> None:
    s = make_stream(kind)
    assert s.kind == kind and s.playlist == "index.m3u8" and s.segments == 6
    assert abs(s.duration_s - 12.0) <= 0.02 * 12.0
    assert abs(_playlist_sum(s.playlist_path) - s.duration_s) < 0.01
    assert s.total_bytes > 0 and s.bandwidth > 0
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", *FFMPEG_INPUT_ARGS,
                           "-i", str(s.playlist_path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""


def test_every_uri_in_the_playlist_is_relative() -> None:
    for kind in KINDS:
        text = make_stream(kind).playlist_path.read_text()
        assert "://" not in text and "/" not in "".join(l for l in text.splitlines() if not l.startswith("#"))


def test_aes128_has_explicit_iv_and_decrypts() -> None:
    s = make_stream("aes128")
    text = s.playlist_path.read_text()
    assert f'URI="key.bin",IV=0x{s.iv.hex()}' in text
    assert (s.dir / "key.bin").read_bytes() == s.key and len(s.key) == 16
    seg = (s.dir / s.segment_files[0]).read_bytes()
    assert seg[0] != 0x47 or not _is_ts(seg)
    assert _is_ts(_decrypt(seg, s.key, s.iv))


def test_aes128_noiv_uses_the_media_sequence_number_as_iv() -> None:
    s = make_stream("aes128_noiv")
    text = s.playlist_path.read_text()
    assert '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n' in text and "IV=" not in text
    assert f"#EXT-X-MEDIA-SEQUENCE:{s.media_sequence}" in text and s.media_sequence == 1
    for i, name in enumerate(s.segment_files):
        seg = (s.dir / name).read_bytes()
        assert seg[0] != 0x47, "segment is not encrypted"
        clear = _decrypt(seg, s.key, (s.media_sequence + i).to_bytes(16, "big"))
        assert clear[0] == 0x47 and _is_ts(clear)
        assert s.segment_iv(i) == (s.media_sequence + i).to_bytes(16, "big")
    # The position instead of the sequence number garbles the first block.
    seg0 = (s.dir / s.segment_files[0]).read_bytes()
    wrong = Cipher(algorithms.AES(s.key), modes.CBC((0).to_bytes(16, "big"))).decryptor()
    right = _decrypt(seg0, s.key, s.segment_iv(0))
    assert (wrong.update(seg0) + wrong.finalize())[:16] != right[:16]


def test_disguised_segments_carry_a_png_header_before_ts() -> None:
    s = make_stream("disguised")
    header = fake_png_header()
    assert header.startswith(b"\x89PNG\r\n\x1a\n") and header[12:16] == b"IHDR"
    assert list(s.segment_files) == [f"video{i}.jpeg" for i in range(s.segments)]
    for name in s.segment_files:
        data = (s.dir / name).read_bytes()
        assert data.startswith(header)
        assert _is_ts(data[len(header):])


def test_byterange_ranges_tile_one_file() -> None:
    s = make_stream("byterange")
    assert set(s.segment_files) == {"index.ts"} and len(s.byteranges) == s.segments
    assert "#EXT-X-BYTERANGE:" in s.playlist_path.read_text()
    offset = 0
    for off, length in s.byteranges:
        assert off == offset
        offset += length
    assert offset == (s.dir / "index.ts").stat().st_size
    data = (s.dir / "index.ts").read_bytes()
    off, length = s.byteranges[1]
    assert _is_ts(data[off:off + length])


def test_fmp4_has_an_init_segment() -> None:
    s = make_stream("fmp4")
    assert s.init_file == "init.mp4"
    assert '#EXT-X-MAP:URI="init.mp4"' in s.playlist_path.read_text()
    assert (s.dir / "init.mp4").read_bytes()[4:8] == b"ftyp"
    assert all(n.endswith(".m4s") for n in s.segment_files)


def test_size_follows_video_kbps() -> None:
    s = make_stream("clear")
    expected = 12.0 * (800 + 64) * 1000 / 8 * 1.04  # the docstring's rule of thumb
    assert 0.8 * expected < s.total_bytes < 1.2 * expected


def test_cache_returns_the_same_stream_fast() -> None:
    first = make_stream("aes128")
    t0 = time.monotonic()
    again = make_stream("aes128")
    assert time.monotonic() - t0 < 0.5
    assert again == first
    assert first.dir.parent.name == "streams" and first.dir.name.startswith("aes128-")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stream kind"):
        make_stream("webm")


def _race(cache_dir: str, q: multiprocessing.Queue) -> None:
    s = make_stream("clear", duration_s=4.0, segment_s=2.0, video_kbps=300, cache_dir=Path(cache_dir))
    q.put(str(s.dir))


def test_racing_processes_share_one_complete_stream(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    dirs = {q.get(timeout=5) for _ in procs}
    assert len(dirs) == 1
    (d,) = dirs
    assert (Path(d) / "stream.json").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_stale_temp_dirs_of_killed_runs_are_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / ".tmp-clear-deadbeef-x"
    stale.mkdir()
    (stale / "seg0.ts").write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    s = make_stream("clear", duration_s=2.0, segment_s=1.0, video_kbps=200, cache_dir=tmp_path)
    assert not stale.exists()
    assert s.segments == 2 and s.dir.parent == tmp_path
