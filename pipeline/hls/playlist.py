"""Pure HLS playlist parsing: text in, dataclasses out, no network.

``parse_playlist(text, base_url)`` returns a :class:`MasterPlaylist` (variants) or a
:class:`MediaPlaylist` (segments). Everything a downloader needs is resolved here:
absolute URLs, the key and IV of every segment, byte ranges with implicit offsets,
the initialisation section (``EXT-X-MAP``) and the discontinuity sequence.

What cannot be downloaded as a video-on-demand is a :class:`PlaylistError`, never
a hang: a live playlist (no ``EXT-X-ENDLIST``), an encryption method other than
AES-128, a playlist with no segment, text that is not a playlist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from pipeline.errors import PlaylistError

__all__ = [
    "ByteRange",
    "InitSection",
    "Key",
    "MasterPlaylist",
    "MediaPlaylist",
    "Segment",
    "Variant",
    "choose_variant",
    "parse_playlist",
]

_ATTR_RE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True)
class ByteRange:
    """``length`` bytes starting at ``offset`` of the resource."""

    length: int
    offset: int

    @property
    def header(self) -> str:
        """The HTTP ``Range`` header value for this range."""
        return f"bytes={self.offset}-{self.offset + self.length - 1}"


@dataclass(frozen=True)
class Key:
    """An AES-128 key reference; ``iv`` is None when the sequence number is the IV."""

    method: str
    uri: str
    iv: bytes | None = None

    def iv_for(self, media_sequence: int) -> bytes:
        """The IV for a segment: the explicit one, else its media sequence number (RFC 8216 §5.2)."""
        if self.iv is not None:
            return self.iv
        return media_sequence.to_bytes(16, "big")


@dataclass(frozen=True)
class InitSection:
    """The media initialisation section of ``EXT-X-MAP`` (fMP4 ``ftyp``+``moov``)."""

    url: str
    byterange: ByteRange | None = None
    key: Key | None = None


@dataclass(frozen=True)
class Segment:
    """One media segment, with everything needed to fetch and decrypt it."""

    index: int  # position in the playlist, from 0
    url: str
    duration_s: float
    media_sequence: int
    byterange: ByteRange | None = None
    key: Key | None = None
    init: InitSection | None = None
    discontinuity_seq: int = 0
    title: str = ""


@dataclass(frozen=True)
class Variant:
    """One ``EXT-X-STREAM-INF`` entry of a master playlist."""

    url: str
    bandwidth: int = 0
    average_bandwidth: int = 0
    resolution: tuple[int, int] | None = None
    codecs: str = ""
    frame_rate: float = 0.0

    @property
    def height(self) -> int:
        return self.resolution[1] if self.resolution else 0


@dataclass(frozen=True)
class MasterPlaylist:
    url: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class MediaPlaylist:
    url: str
    segments: tuple[Segment, ...]
    target_duration_s: float = 0.0
    media_sequence: int = 0
    playlist_type: str = ""
    endlist: bool = False
    version: int = 1
    inits: tuple[InitSection, ...] = field(default=())

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    @property
    def encrypted(self) -> bool:
        return any(s.key is not None for s in self.segments)

    @property
    def is_fmp4(self) -> bool:
        return any(s.init is not None for s in self.segments)


def parse_attributes(text: str) -> dict[str, str]:
    """``KEY=VALUE,KEY="quoted, value"`` → dict, quotes removed."""
    out: dict[str, str] = {}
    for m in _ATTR_RE.finditer(text):
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[m.group(1)] = value.strip()
    return out


def parse_playlist(text: str, base_url: str) -> MasterPlaylist | MediaPlaylist:
    """Parse an M3U8 playlist fetched from ``base_url``.

    Parameters:
      text: the playlist body.
      base_url: the URL it was fetched from (after redirects); relative URIs resolve against it.

    Returns:
      A :class:`MasterPlaylist` when the text lists variants, else a :class:`MediaPlaylist`.

    Raises:
      PlaylistError: not a playlist, live, empty, or encrypted with an unsupported method.
    """
    lines = [ln.strip() for ln in text.lstrip("\ufeff").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].startswith("#EXTM3U"):
        head = (lines[0][:60] if lines else "").strip()
        raise PlaylistError(f"not an HLS playlist ({base_url}): starts with {head!r}" if head
                            else f"empty playlist ({base_url})")
    if any(ln.startswith("#EXT-X-STREAM-INF") for ln in lines):
        return _parse_master(lines, base_url)
    return _parse_media(lines, base_url)


def _parse_master(lines: list[str], base_url: str) -> MasterPlaylist:
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for ln in lines[1:]:
        if ln.startswith("#EXT-X-STREAM-INF:"):
            pending = parse_attributes(ln.split(":", 1)[1])
        elif ln.startswith("#"):
            continue
        elif pending is not None:
            variants.append(_variant(pending, urljoin(base_url, ln)))
            pending = None
    if not variants:
        raise PlaylistError(f"master playlist without a variant URI ({base_url})")
    return MasterPlaylist(base_url, tuple(variants))


def _variant(attrs: dict[str, str], url: str) -> Variant:
    res = None
    m = re.fullmatch(r"(\d+)[xX](\d+)", attrs.get("RESOLUTION", ""))
    if m:
        res = (int(m.group(1)), int(m.group(2)))
    return Variant(
        url=url,
        bandwidth=_int(attrs.get("BANDWIDTH")),
        average_bandwidth=_int(attrs.get("AVERAGE-BANDWIDTH")),
        resolution=res,
        codecs=attrs.get("CODECS", ""),
        frame_rate=_float(attrs.get("FRAME-RATE")),
    )


def _parse_media(lines: list[str], base_url: str) -> MediaPlaylist:
    segments: list[Segment] = []
    inits: list[InitSection] = []
    target = 0.0
    first_seq = seq = 0
    disc_seq = 0
    playlist_type = ""
    endlist = False
    version = 1
    key: Key | None = None
    init: InitSection | None = None
    duration: float | None = None
    title = ""
    byterange: tuple[int, int | None] | None = None
    next_offset: dict[str, int] = {}  # implicit byte-range offsets, per resource

    for ln in lines[1:]:
        if not ln.startswith("#"):
            if duration is None:
                raise PlaylistError(f"segment URI {ln[:80]!r} without #EXTINF ({base_url})")
            url = urljoin(base_url, ln)
            br = None
            if byterange is not None:
                length, offset = byterange
                if offset is None:
                    offset = next_offset.get(url, 0)
                br = ByteRange(length, offset)
                next_offset[url] = offset + length
            segments.append(Segment(index=len(segments), url=url, duration_s=duration,
                                    media_sequence=seq, byterange=br, key=key, init=init,
                                    discontinuity_seq=disc_seq, title=title))
            seq += 1
            duration, title, byterange = None, "", None
            continue
        tag, _, value = ln.partition(":")
        if tag == "#EXTINF":
            dur_text, _, title = value.partition(",")
            try:
                duration = float(dur_text)
            except ValueError:
                raise PlaylistError(f"bad #EXTINF duration {dur_text!r} ({base_url})") from None
            if duration < 0:
                raise PlaylistError(f"negative #EXTINF duration {dur_text!r} ({base_url})")
        elif tag == "#EXT-X-TARGETDURATION":
            target = _float(value)
        elif tag == "#EXT-X-MEDIA-SEQUENCE":
            first_seq = seq = _int(value)
        elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
            disc_seq = _int(value)
        elif tag == "#EXT-X-DISCONTINUITY":
            disc_seq += 1
        elif tag == "#EXT-X-PLAYLIST-TYPE":
            playlist_type = value.strip().upper()
        elif tag == "#EXT-X-ENDLIST":
            endlist = True
        elif tag == "#EXT-X-VERSION":
            version = _int(value) or 1
        elif tag == "#EXT-X-BYTERANGE":
            byterange = _byterange(value, base_url)
        elif tag == "#EXT-X-KEY":
            key = _key(parse_attributes(value), base_url)
        elif tag == "#EXT-X-MAP":
            attrs = parse_attributes(value)
            if not attrs.get("URI"):
                raise PlaylistError(f"#EXT-X-MAP without URI ({base_url})")
            br = None
            if attrs.get("BYTERANGE"):
                length, offset = _byterange(attrs["BYTERANGE"], base_url)
                br = ByteRange(length, offset or 0)
            init = InitSection(urljoin(base_url, attrs["URI"]), br, key)
            if init not in inits:
                inits.append(init)
        elif tag == "#EXT-X-SESSION-KEY":
            _key(parse_attributes(value), base_url)  # only to refuse unsupported DRM early

    if not endlist and playlist_type != "VOD":
        raise PlaylistError(f"live playlist (no #EXT-X-ENDLIST): only video-on-demand is downloaded ({base_url})")
    if not segments:
        raise PlaylistError(f"playlist has no segment ({base_url})")
    return MediaPlaylist(url=base_url, segments=tuple(segments), target_duration_s=target,
                         media_sequence=first_seq, playlist_type=playlist_type, endlist=endlist,
                         version=version, inits=tuple(inits))


def _key(attrs: dict[str, str], base_url: str) -> Key | None:
    method = attrs.get("METHOD", "").upper()
    if method == "NONE":
        return None
    keyformat = attrs.get("KEYFORMAT", "identity")
    if method != "AES-128" or keyformat != "identity":
        shown = method or "(missing)"
        if keyformat != "identity":
            shown += f" with KEYFORMAT {keyformat}"
        raise PlaylistError(f"unsupported encryption {shown}: only AES-128 is supported ({base_url})")
    uri = attrs.get("URI")
    if not uri:
        raise PlaylistError(f"#EXT-X-KEY AES-128 without URI ({base_url})")
    iv = None
    if attrs.get("IV"):
        hexiv = attrs["IV"]
        if hexiv[:2].lower() == "0x":
            hexiv = hexiv[2:]
        try:
            iv = bytes.fromhex(hexiv.rjust(32, "0"))
        except ValueError:
            raise PlaylistError(f"bad IV {attrs['IV']!r} ({base_url})") from None
        if len(iv) != 16:
            raise PlaylistError(f"IV {attrs['IV']!r} is not 128 bits ({base_url})")
    return Key(method, urljoin(base_url, uri), iv)


def _byterange(value: str, base_url: str) -> tuple[int, int | None]:
    m = re.fullmatch(r"\s*(\d+)(?:@(\d+))?\s*", value)
    if not m:
        raise PlaylistError(f"bad byte range {value!r} ({base_url})")
    return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)


def choose_variant(master: MasterPlaylist, preference: str = "highest") -> Variant:
    """Pick a variant: ``highest`` (bandwidth, then resolution), ``lowest``, or a max height like ``720``.

    A height preference takes the best variant at or below it, else the smallest one.
    """
    def rank(v: Variant) -> tuple[int, int, int]:
        return (v.bandwidth or v.average_bandwidth, v.height, v.average_bandwidth)

    ordered = sorted(master.variants, key=rank)
    pref = (preference or "highest").strip().lower()
    if pref == "highest":
        return ordered[-1]
    if pref == "lowest":
        return ordered[0]
    m = re.fullmatch(r"(\d+)p?", pref)
    if not m:
        raise PlaylistError(f"variant preference {preference!r}: expected highest, lowest or a height such as 720")
    limit = int(m.group(1))
    fitting = [v for v in ordered if v.height and v.height <= limit]
    if fitting:
        return max(fitting, key=lambda v: (v.height, v.bandwidth))
    return min(ordered, key=lambda v: (v.height or 0, v.bandwidth))


def _int(text: str | None) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return 0


def _float(text: str | None) -> float:
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return 0.0
