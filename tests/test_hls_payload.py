"""Segment bodies: decrypt, strip image disguises, verify TS/fMP4. Pure, no network."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pipeline.hls.payload import BadPayload, check_mp4, check_ts, clean_init, clean_segment, decrypt_aes128


def ts_packets(n: int) -> bytes:
    return b"".join(b"\x47" + bytes([k % 256]) * 187 for k in range(n))


def encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    p = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(p.update(data) + p.finalize()) + enc.finalize()


def png(width: int = 4) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0, 0)
    # deliberately contains 0x47 ('G') bytes so the sync search must not stop there
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"GGGG\x47" * 40)) + chunk(b"IEND", b"")


KEY, IV = os.urandom(16), os.urandom(16)


def test_clear_ts_passes_through():
    data = ts_packets(20)
    assert clean_segment(data, key=None, iv=None, fmp4=False) == data


def test_aes_roundtrip_and_wrong_key_caught():
    data = ts_packets(50)
    enc = encrypt(data, KEY, IV)
    assert clean_segment(enc, key=KEY, iv=IV, fmp4=False) == data
    with pytest.raises(BadPayload):
        clean_segment(enc, key=os.urandom(16), iv=IV, fmp4=False)
    # a wrong IV garbles only the first block: the padding survives, the sync byte does not
    with pytest.raises(BadPayload, match="sync byte|not MPEG-TS"):
        clean_segment(enc, key=KEY, iv=bytes(16), fmp4=False)


def test_truncated_bodies_caught():
    data = ts_packets(20)
    with pytest.raises(BadPayload, match="188"):
        check_ts(data[:-50])
    enc = encrypt(data, KEY, IV)
    with pytest.raises(BadPayload):
        decrypt_aes128(enc[:-16], KEY, IV)
    with pytest.raises(BadPayload, match="whole number of AES blocks"):
        decrypt_aes128(enc[:-5], KEY, IV)


def test_html_error_page_is_not_a_segment():
    with pytest.raises(BadPayload):
        clean_segment(b"<html><body>502 Bad Gateway</body></html>", key=None, iv=None, fmp4=False)


@pytest.mark.parametrize("header", [png(), b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"G" * 300 + b"\xff\xd9",
                                    b"GIF89a" + b"\x01\x00\x01\x00" + b"G\x00" * 100 + b"\x00\x3b"])
def test_image_disguise_stripped_clear(header):
    data = ts_packets(30)
    assert clean_segment(header + data, key=None, iv=None, fmp4=False) == data


def test_image_disguise_before_ciphertext_stripped():
    data = ts_packets(30)
    header = png(5)
    assert len(header) % 16  # otherwise the header-before-ciphertext case cannot be told apart
    assert clean_segment(header + encrypt(data, KEY, IV), key=KEY, iv=IV, fmp4=False) == data


def test_image_disguise_inside_ciphertext_stripped():
    data = ts_packets(30)
    assert clean_segment(encrypt(png() + data, KEY, IV), key=KEY, iv=IV, fmp4=False) == data


def test_fmp4_boxes():
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body
    frag = box(b"styp", b"msdh") + box(b"moof", b"\x00" * 40) + box(b"mdat", b"\x01" * 500)
    assert clean_segment(frag, key=None, iv=None, fmp4=True) == frag
    assert clean_segment(encrypt(frag, KEY, IV), key=KEY, iv=IV, fmp4=True) == frag
    with pytest.raises(BadPayload, match="truncated"):
        check_mp4(frag[:-10])
    with pytest.raises(BadPayload, match="not an MP4 box"):
        check_mp4(b"\x00\x00\x00\x10junkjunkjunkjunk")
    init = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"moov", b"\x00" * 64)
    assert clean_init(init, key=None, iv=None) == init


def test_decrypting_in_place_in_a_worker_buffer_gives_the_same_media():
    from pipeline.hls.buffers import SegmentBuffer

    data = ts_packets(5000)  # ~940 KB, like a real segment
    enc = encrypt(data, KEY, IV)
    buf = SegmentBuffer()
    for off in range(0, len(enc), 65536):  # as the network delivers it
        buf.append(enc[off:off + 65536])
    raw = buf.view()
    out = clean_segment(raw, key=KEY, iv=IV, fmp4=False, scratch=buf.writable())
    assert out == data
    assert out.obj is buf.writable().obj  # the plaintext is in the buffer itself: no second copy
    # a wrong key in place is still caught (and only garbles the buffer it owns)
    buf.reset()
    buf.append(enc)
    with pytest.raises(BadPayload):
        clean_segment(buf.view(), key=os.urandom(16), iv=IV, fmp4=False, scratch=buf.writable())


def test_disguised_encrypted_body_is_never_decrypted_in_place():
    """Two decryptions of the same bytes may be tried; the scratch memory is ignored for it."""
    from pipeline.hls.buffers import SegmentBuffer

    data = ts_packets(40)
    buf = SegmentBuffer()
    buf.append(png() + encrypt(data, KEY, IV))
    assert clean_segment(buf.view(), key=KEY, iv=IV, fmp4=False, scratch=buf.writable()) == data


def test_scratch_without_room_for_a_block_is_refused():
    enc = encrypt(ts_packets(10), KEY, IV)
    with pytest.raises(ValueError, match="15 bytes to spare"):
        clean_segment(enc, key=KEY, iv=IV, fmp4=False, scratch=memoryview(bytearray(enc)))
