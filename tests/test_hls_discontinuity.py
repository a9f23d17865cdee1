"""Playlists with EXT-X-DISCONTINUITY (timestamps restart): joined per run, then concatenated.

Served over real HTTP by a plain static server (FixtureSite serves one stream per title; a
spliced playlist needs two), with streams made by the fixture's ffmpeg generator.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.config import HttpConfig
from pipeline.hls import HlsOptions, download
from pipeline.hls.remux import ffmpeg_exe
from tools.fixture_site.media import make_stream


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102
        pass


@pytest.fixture(scope="module")
def spliced(tmp_path_factory):
    """main (6 s) | ad (4 s) | main again (6 s), each part's timestamps starting afresh."""
    main = make_stream("clear", duration_s=6.0, segment_s=2.0, video_kbps=600)
    ad = make_stream("clear", duration_s=4.0, segment_s=2.0, video_kbps=300)
    root = tmp_path_factory.mktemp("spliced")
    (root / "main").symlink_to(main.dir)
    (root / "ads").symlink_to(ad.dir)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for n, (prefix, stream) in enumerate((("main", main), ("ads", ad), ("main", main))):
        if n:
            lines.append("#EXT-X-DISCONTINUITY")
        for d, f in zip(stream.segment_durations, stream.segment_files):
            lines += [f"#EXTINF:{d:.6f},", f"{prefix}/{f}"]
    lines.append("#EXT-X-ENDLIST")
    (root / "index.m3u8").write_text("\n".join(lines) + "\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.m3u8", main, ad
    finally:
        server.shutdown()
        server.server_close()


def _decode_errors(path) -> str:
    proc = subprocess.run([ffmpeg_exe(None), "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.strip()


OPTS = HlsOptions(http=HttpConfig(allow_private_urls=True))


def test_discontinuities_concatenate_to_the_full_duration(spliced, tmp_path):
    url, main, ad = spliced
    result = download(url, tmp_path / "o.mp4", part_dir=tmp_path / "p", options=OPTS)
    expected = 2 * main.duration_s + ad.duration_s
    assert result.expected_duration_s == pytest.approx(expected)
    assert result.duration_s == pytest.approx(expected, rel=0.03)
    assert _decode_errors(result.path) == ""
    assert not (tmp_path / "p").exists()


def test_ad_filter_drops_the_spliced_run(spliced, tmp_path):
    url, main, _ad = spliced
    options = HlsOptions(http=OPTS.http, ad_segment_regex=r"/ads/")
    result = download(url, tmp_path / "o.mp4", part_dir=tmp_path / "p", options=options)
    assert result.segments == 2 * main.segments
    assert result.duration_s == pytest.approx(2 * main.duration_s, rel=0.03)
    assert _decode_errors(result.path) == ""
