"""Segment bodies: decrypt, strip a disguise, and prove the result is media. Pure functions.

A segment is checked the moment it arrives, so a wrong key or IV, a truncated body or
an HTML error page is caught at once and retried — a decode pass of the final file does
not catch those (ffmpeg decodes a file with one segment still encrypted without error).

- MPEG-TS: every 188-byte packet starts with the sync byte 0x47, and the body is a whole
  number of packets.
- fMP4 (``EXT-X-MAP`` streams): the body is a sequence of well-formed top-level boxes.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TS_PACKET_BYTES = 188
TS_SYNC = 0x47
_IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")
_MP4_BOXES = {b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"sidx", b"emsg", b"prft", b"free",
              b"skip", b"uuid", b"meta", b"mfra", b"ssix", b"pdin", b"wide", b"mvex", b"udta"}


class BadPayload(ValueError):
    """The body is not what a segment should be; the message says why (and a retry may help)."""


Buffer = bytes | bytearray | memoryview


def decrypt_aes128(data: Buffer, key: bytes, iv: bytes, *, into: memoryview | None = None) -> memoryview:
    """AES-128-CBC with PKCS#7 padding, as HLS uses it (returns a view: no copy of the plaintext).

    ``into``: writable memory of at least ``len(data) + 15`` bytes to decrypt into; it may
    start where ``data`` starts (in place: OpenSSL allows the same input and output), which
    overwrites the ciphertext. The result is then a view of ``into``.
    """
    if len(key) != 16:
        raise BadPayload(f"AES key is {len(key)} bytes, not 16")
    if not data or len(data) % 16:
        raise BadPayload(f"encrypted body of {len(data)} bytes is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    if into is not None:
        n = dec.update_into(data, into)  # (no padding mode: every whole block comes out now)
        if dec.finalize() or n != len(data):
            raise BadPayload("AES decryption held back bytes")  # (not OpenSSL's CBC behaviour)
        plain: Buffer = into[:n]
    else:
        plain = dec.update(data) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise BadPayload("bad PKCS#7 padding after decryption (wrong key or IV, or truncated body)")
    return memoryview(plain)[:-pad]


def image_header_length(data: Buffer) -> int:
    """Length of a fake image put before the media, by the image's own structure; 0 if none.

    PNG: up to the end of the IEND chunk. JPEG: up to the first EOI after the first SOS.
    GIF: up to the trailer byte. Used for encrypted segments, where the sync byte cannot be
    searched for before decryption.
    """
    if data[:8] == _IMAGE_MAGICS[0]:
        pos = 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            ctype = bytes(data[pos + 4:pos + 8])
            pos += 12 + length
            if ctype == b"IEND":
                return min(pos, len(data))
        return 0
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)  # (memoryview has no find; this path is for disguised segments only)
    if data[:3] == _IMAGE_MAGICS[1]:
        sos = data.find(b"\xff\xda")
        eoi = data.find(b"\xff\xd9", sos if sos >= 0 else 2)
        return eoi + 2 if eoi >= 0 else 0
    if data[:6] in (b"GIF87a", b"GIF89a"):
        end = data.find(b"\x00\x3b")
        return end + 2 if end >= 0 else 0
    return 0


def find_ts_start(data: Buffer) -> int:
    """Offset from which ``data`` is whole TS packets, every one with its sync byte; -1 if none.

    Only offsets congruent to the length modulo 188 can be the start. When the byte just
    before the real start happens to be 0x47 too, two offsets qualify; the one whose packet
    is the PAT (PID 0, where muxers start a segment) wins.
    """
    n = len(data)
    for pos in range(n % TS_PACKET_BYTES, n, TS_PACKET_BYTES):
        if data[pos] != TS_SYNC:
            continue
        syncs = bytes(data[pos::TS_PACKET_BYTES])
        if syncs.count(TS_SYNC) == len(syncs):
            nxt = pos + TS_PACKET_BYTES
            if _pid(data, pos) != 0 and nxt < n and _pid(data, nxt) == 0:
                return nxt
            return pos
    return -1


def _pid(data: Buffer, pos: int) -> int:
    return ((data[pos + 1] & 0x1F) << 8) | data[pos + 2] if pos + 2 < len(data) else -1


def looks_like_image(data: Buffer) -> bool:
    return bytes(data[:8]).startswith(_IMAGE_MAGICS)


def check_ts(data: Buffer) -> None:
    """Raise :class:`BadPayload` unless ``data`` is whole MPEG-TS packets, each with the sync byte."""
    if not data:
        raise BadPayload("empty segment")
    if len(data) % TS_PACKET_BYTES:
        raise BadPayload(f"{len(data)} bytes is not a whole number of 188-byte TS packets (truncated?)")
    syncs = bytes(data[::TS_PACKET_BYTES])
    if syncs.count(TS_SYNC) != len(syncs):
        bad = next(i for i, b in enumerate(syncs) if b != TS_SYNC)
        raise BadPayload(f"MPEG-TS sync byte missing at packet {bad} of {len(syncs)} "
                         "(wrong key or IV, or not a TS segment)")


def check_mp4(data: Buffer) -> None:
    """Raise :class:`BadPayload` unless ``data`` is a sequence of complete, known top-level boxes."""
    if not data:
        raise BadPayload("empty segment")
    pos, n = 0, len(data)
    while pos < n:
        if pos + 8 > n:
            raise BadPayload(f"truncated MP4 box header at byte {pos}")
        size, btype = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            if pos + 16 > n:
                raise BadPayload(f"truncated MP4 box header at byte {pos}")
            (size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
        elif size == 0:
            size = n - pos
        if btype not in _MP4_BOXES or size < 8:
            raise BadPayload(f"not an MP4 box at byte {pos} ({btype!r}; wrong key or not fMP4)")
        if pos + size > n:
            raise BadPayload(f"MP4 box {btype.decode('latin-1')} at byte {pos} is truncated")
        pos += size


def clean_segment(raw: Buffer, *, key: bytes | None, iv: bytes | None, fmp4: bool,
                  scratch: memoryview | None = None) -> memoryview:
    """Decrypt, strip any image disguise, and verify one segment body.

    ``scratch``: writable memory that starts with ``raw`` and has 16 bytes to spare after it
    (a worker's :class:`~pipeline.hls.buffers.SegmentBuffer`): the body is then decrypted in
    place, with no second copy of the segment. ``raw`` is overwritten.

    A disguise is only looked for when the body starts with an image signature (PNG, JPEG,
    GIF, BMP, RIFF/WebP): a body that merely does not start with the sync byte — say,
    a wrong IV garbling the first block — is an error, never silently trimmed.

    Returns a view of the media bytes to store (no copy). Raises :class:`BadPayload` when
    the result is not valid MPEG-TS (or fMP4 when ``fmp4``).
    """
    data = memoryview(raw)
    if key is not None:
        if iv is None:
            raise BadPayload("encrypted segment without an IV")
        data = _decrypt_maybe_disguised(data, key, iv, scratch)
    if fmp4:
        check_mp4(data)
        return data
    if looks_like_image(data):
        head = image_header_length(data)
        if not head or (len(data) - head) % TS_PACKET_BYTES or data[head] != TS_SYNC:
            head = find_ts_start(data)
        if head < 0:
            raise BadPayload(f"segment is an image with no MPEG-TS inside (first bytes {bytes(data[:8]).hex()})")
        data = data[head:]
    elif data[:1] != b"\x47":
        raise BadPayload(f"segment is not MPEG-TS (first bytes {bytes(data[:8]).hex()}; "
                         "wrong key or IV, or an error page)")
    check_ts(data)
    return data


def _decrypt_maybe_disguised(raw: memoryview, key: bytes, iv: bytes, scratch: memoryview | None) -> memoryview:
    """Decrypt; when an image is put before the ciphertext, decrypt what follows the image."""
    if scratch is not None and not looks_like_image(raw):
        if len(scratch) < len(raw) + 15:
            raise ValueError("scratch memory must have 15 bytes to spare after the body")
        return decrypt_aes128(raw, key, iv, into=scratch)
    if looks_like_image(raw):  # (tries two decryptions of the same bytes: never in place)
        head = image_header_length(raw)
        if head and (len(raw) - head) % 16 == 0:
            try:
                return decrypt_aes128(raw[head:], key, iv)
            except BadPayload:
                pass
    return decrypt_aes128(raw, key, iv)


def clean_init(raw: Buffer, *, key: bytes | None, iv: bytes | None) -> bytes:
    """Decrypt (when keyed) and verify an fMP4 initialisation section."""
    data = decrypt_aes128(raw, key, iv) if key is not None and iv is not None else memoryview(raw)
    check_mp4(data)
    return bytes(data)
