"""The HLS download engine (no Dramatiq, no web server: plain functions and classes).

    from pipeline.hls import download, HlsOptions
    result = download(url, Path("ABC-123.mp4"), part_dir=Path("ABC-123.parts"),
                      options=HlsOptions(headers={"Referer": page_url}))

``parse_playlist`` is pure; ``download`` owns the network, the part directory and ffmpeg.
"""

from pipeline.hls.engine import DownloadResult, HlsOptions, Progress, download
from pipeline.hls.playlist import (ByteRange, InitSection, Key, MasterPlaylist, MediaPlaylist, Segment,
                                   Variant, choose_variant, parse_playlist)

__all__ = [
    "ByteRange",
    "DownloadResult",
    "HlsOptions",
    "InitSection",
    "Key",
    "MasterPlaylist",
    "MediaPlaylist",
    "Progress",
    "Segment",
    "Variant",
    "choose_variant",
    "download",
    "parse_playlist",
]
