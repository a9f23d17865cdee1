"""Real HLS streams made with the bundled ffmpeg, cached on disk.

``make_stream(kind, ...)`` returns a :class:`Stream`: a directory holding a VOD media
playlist, its segments and (for encrypted kinds) ``key.bin``. Every URI in the playlist
is relative, so the same files decode locally with ffmpeg and serve unchanged over HTTP.

Kinds:

- ``clear``       MPEG-TS segments ``seg{n}.ts``.
- ``aes128``      the same, AES-128-CBC encrypted, one ``EXT-X-KEY`` with an explicit ``IV``.
- ``aes128_noiv`` AES-128 with no ``IV`` attribute: segment ``i`` is encrypted with the
                  IV = its media sequence number as a 16-byte big-endian integer. The
                  playlist starts at ``EXT-X-MEDIA-SEQUENCE:1`` (not 0) so an engine that
                  uses the segment's position instead of its sequence number gets it wrong.
- ``byterange``   one ``index.ts`` file addressed by ``EXT-X-BYTERANGE``.
- ``fmp4``        fragmented MP4: ``EXT-X-MAP`` ``init.mp4`` plus ``seg{n}.m4s``.
- ``disguised``   clear TS segments named ``video{n}.jpeg``, each prefixed by a fake PNG
                  header (signature + IHDR chunk) before the first 0x47 sync byte.
                  ffmpeg reads it only with ``FFMPEG_INPUT_ARGS`` (mpegts resyncs past
                  the header).

Content is a moving test pattern with temporal noise (so the encoder really spends the
bitrate) and a 440 Hz AAC tone. The video is H.264 CBR with filler (``nal-hrd=cbr``), so
the size is predictable: ``total_bytes ≈ duration_s × (video_kbps + 64) × 1000 / 8 × 1.04``
(the last factor is MPEG-TS overhead). Measured on 2 cores: 200 s at 8000 kbps with 1 s
segments gives 201 segments of ~1 MB, ~199 MB in total, in about 6 s.

Streams are cached under ``tools/.cache/streams/<kind>-<params hash>/``. A stream is
generated into a temporary sibling directory and renamed into place only once complete,
under a file lock, so concurrent processes and killed runs never expose half a stream.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

KINDS = ("clear", "aes128", "aes128_noiv", "byterange", "fmp4", "disguised")

# Bump when the generated files change shape, so stale caches are not reused.
GENERATOR_VERSION = 1
WIDTH, HEIGHT, FPS = 320, 180, 25
AUDIO_KBPS = 64
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "streams"
_MANIFEST = "stream.json"
# What the bundled ffmpeg (9.x) needs to read these playlists locally: it refuses key
# files and segment names with unusual extensions (``key.bin``, ``video0.jpeg``) otherwise.
FFMPEG_INPUT_ARGS = ("-allowed_extensions", "ALL", "-allowed_segment_extensions", "ALL",
                     "-extension_picky", "0")
_STALE_TMP_S = 3600


@dataclass(frozen=True)
class Stream:
    """A generated stream on disk.

    ``playlist`` is the media playlist's file name inside ``dir``; ``segment_files[i]`` is
    the file that serves segment ``i`` (for ``byterange`` every entry is the one file and
    ``byteranges[i]`` is its ``(offset, length)``).
    """

    dir: Path
    playlist: str
    kind: str
    duration_s: float
    segments: int
    total_bytes: int
    key: bytes | None
    iv: bytes | None = None  # the explicit IV of ``aes128``; None for the other kinds
    media_sequence: int = 0
    segment_files: tuple[str, ...] = ()
    byteranges: tuple[tuple[int, int], ...] | None = None
    init_file: str | None = None  # the EXT-X-MAP file of ``fmp4``
    key_file: str | None = None
    segment_durations: tuple[float, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT
    bandwidth: int = 0  # peak bits/s, as a master playlist's BANDWIDTH would say

    @property
    def playlist_path(self) -> Path:
        return self.dir / self.playlist

    def segment_iv(self, index: int) -> bytes | None:
        """The IV that decrypts segment ``index`` (None when the stream is clear)."""
        if self.key is None:
            return None
        if self.iv is not None:
            return self.iv
        return (self.media_sequence + index).to_bytes(16, "big")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg that imageio-ffmpeg ships."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_stream(kind: str = "aes128", *, duration_s: float = 12.0, segment_s: float = 2.0,
                video_kbps: int = 800, cache_dir: Path | None = None) -> Stream:
    """Return the cached stream for these parameters, generating it on first use.

    Raises ``ValueError`` for an unknown kind or nonsensical sizes, ``RuntimeError`` when
    ffmpeg fails (with its stderr).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown stream kind {kind!r}; one of {', '.join(KINDS)}")
    if duration_s <= 0 or segment_s <= 0 or video_kbps <= 0:
        raise ValueError("duration_s, segment_s and video_kbps must be positive")
    params = {"kind": kind, "duration_s": float(duration_s), "segment_s": float(segment_s),
              "video_kbps": int(video_kbps), "v": GENERATOR_VERSION, "size": [WIDTH, HEIGHT, FPS]}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{kind}-{digest}"
    stream = _load(final)
    if stream is not None:
        return stream
    # The lock only saves a second ffmpeg run; correctness comes from the atomic rename.
    with open(root / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stream = _load(final)
        if stream is not None:
            return stream
        _clean_stale(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
        try:
            _generate(tmp, kind, duration_s, segment_s, video_kbps, digest)
            try:
                os.rename(tmp, final)
            except OSError:
                # Someone else (without the lock, e.g. another cache_dir user) won the race.
                if _load(final) is None:
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    stream = _load(final)
    if stream is None:
        raise RuntimeError(f"stream cache {final} is unreadable after generation")
    return stream


def _load(d: Path) -> Stream | None:
    try:
        raw = json.loads((d / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    raw["dir"] = d
    raw["key"] = bytes.fromhex(raw["key"]) if raw["key"] else None
    raw["iv"] = bytes.fromhex(raw["iv"]) if raw["iv"] else None
    raw["segment_files"] = tuple(raw["segment_files"])
    raw["segment_durations"] = tuple(raw["segment_durations"])
    if raw["byteranges"] is not None:
        raw["byteranges"] = tuple(tuple(b) for b in raw["byteranges"])
    return Stream(**raw)


def _clean_stale(root: Path) -> None:
    now = time.time()
    for p in root.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _encode(out: Path, kind: str, duration_s: float, segment_s: float, video_kbps: int) -> None:
    """Run ffmpeg's HLS muxer into ``out`` (index.m3u8 + segments, clear)."""
    gop = max(1, round(FPS * segment_s))
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", f"{duration_s:.3f}",
        # Temporal noise makes every frame expensive, so CBR really reaches video_kbps.
        "-vf", "noise=alls=40:allf=t+u,format=yuv420p",
        "-c:v", "libx264", "-preset", "ultrafast",
        "-b:v", f"{video_kbps}k", "-minrate", f"{video_kbps}k", "-maxrate", f"{video_kbps}k",
        "-bufsize", f"{video_kbps}k", "-x264-params", "nal-hrd=cbr:force-cfr=1",
        # A keyframe at every segment boundary, so segments cut cleanly.
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-force_key_frames", f"expr:gte(t,n_forced*{segment_s})",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "1",
        "-f", "hls", "-hls_time", f"{segment_s}", "-hls_list_size", "0",
        "-hls_playlist_type", "vod",
    ]
    if kind == "byterange":
        cmd += ["-hls_flags", "single_file", "-hls_segment_filename", str(out / "index.ts")]
    elif kind == "fmp4":
        cmd += ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
                "-hls_segment_filename", str(out / "seg%d.m4s")]
    else:
        cmd += ["-hls_segment_filename", str(out / "seg%d.ts")]
    cmd.append(str(out / "index.m3u8"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")
_BYTERANGE = re.compile(r"#EXT-X-BYTERANGE:(\d+)(?:@(\d+))?")


def _parse_media(text: str) -> tuple[list[float], list[str], list[tuple[int, int]]]:
    durations, uris, ranges = [], [], []
    pending_range: tuple[int, int] | None = None
    next_offset = 0
    for line in text.splitlines():
        line = line.strip()
        if m := _EXTINF.match(line):
            durations.append(float(m.group(1)))
        elif m := _BYTERANGE.match(line):
            length = int(m.group(1))
            offset = int(m.group(2)) if m.group(2) is not None else next_offset
            pending_range = (offset, length)
            next_offset = offset + length
        elif line and not line.startswith("#"):
            uris.append(line)
            if pending_range:
                ranges.append(pending_range)
                pending_range = None
    return durations, uris, ranges


def _playlist(durations: list[float], uris: list[str], *, media_sequence: int = 0,
              key_line: str | None = None, version: int = 3) -> str:
    target = max(1, int(max(durations) + 0.999))
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}", "#EXT-X-PLAYLIST-TYPE:VOD"]
    if key_line:
        lines.append(key_line)
    for d, u in zip(durations, uris):
        lines += [f"#EXTINF:{d:.6f},", u]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def fake_png_header(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """PNG signature + IHDR chunk (with a correct CRC), as disguising CDNs prepend."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _generate(out: Path, kind: str, duration_s: float, segment_s: float, video_kbps: int,
              digest: str) -> None:
    _encode(out, kind, duration_s, segment_s, video_kbps)
    text = (out / "index.m3u8").read_text()
    durations, uris, ranges = _parse_media(text)
    if not uris:
        raise RuntimeError("ffmpeg wrote a playlist without segments")
    # Key and IV derive from the parameters, so a regenerated stream is byte-identical.
    secret = hashlib.sha256(f"nassav-fixture-key:{digest}".encode()).digest()
    key = iv = None
    key_file = init_file = None
    media_sequence = 0
    byteranges = None
    files = list(uris)

    if kind in ("aes128", "aes128_noiv"):
        key, key_file = secret[:16], "key.bin"
        (out / key_file).write_bytes(key)
        if kind == "aes128":
            iv = secret[16:32]
            key_line = f'#EXT-X-KEY:METHOD=AES-128,URI="{key_file}",IV=0x{iv.hex()}'
        else:
            media_sequence = 1
            key_line = f'#EXT-X-KEY:METHOD=AES-128,URI="{key_file}"'
        for i, name in enumerate(files):
            p = out / name
            seg_iv = iv if iv is not None else (media_sequence + i).to_bytes(16, "big")
            p.write_bytes(_encrypt(p.read_bytes(), key, seg_iv))
        text = _playlist(durations, files, media_sequence=media_sequence, key_line=key_line)
    elif kind == "disguised":
        header = fake_png_header()
        renamed = []
        for i, name in enumerate(files):
            new = f"video{i}.jpeg"
            (out / new).write_bytes(header + (out / name).read_bytes())
            (out / name).unlink()
            renamed.append(new)
        files = renamed
        text = _playlist(durations, files)
    elif kind == "byterange":
        byteranges = tuple(ranges)
        if len(byteranges) != len(files):
            raise RuntimeError("byterange playlist without a range per segment")
    elif kind == "fmp4":
        init_file = "init.mp4"
        if not (out / init_file).exists():
            raise RuntimeError("ffmpeg wrote no fMP4 init segment")
    # clear, byterange and fmp4 keep ffmpeg's own playlist: already VOD with relative URIs.
    (out / "index.m3u8").write_text(text)

    seg_sizes = [length for _, length in byteranges] if byteranges else \
        [(out / f).stat().st_size for f in files]
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file() and p.suffix != ".m3u8")
    peak = max(s * 8 / d for s, d in zip(seg_sizes, durations) if d > 0)
    manifest = Stream(
        dir=out, playlist="index.m3u8", kind=kind, duration_s=round(sum(durations), 6),
        segments=len(files), total_bytes=total, key=key, iv=iv, media_sequence=media_sequence,
        segment_files=tuple(files), byteranges=byteranges, init_file=init_file,
        key_file=key_file, segment_durations=tuple(durations), bandwidth=int(peak),
    )
    raw = asdict(manifest)
    raw.pop("dir")
    raw["key"] = key.hex() if key else None
    raw["iv"] = iv.hex() if iv else None
    # The manifest is written last: its presence marks a complete stream.
    (out / _MANIFEST).write_text(json.dumps(raw, indent=1))
