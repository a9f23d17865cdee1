"""Cover artwork for media servers: fanart, poster (the box front) and a thumbnail.

The cover of a JAV release is the whole box: back on the left, front on the right. Kodi and
Jellyfin show ``-poster.jpg`` as the portrait, so it is the right-hand crop with
width = height × 565/800.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from pipeline.errors import Permanent

POSTER_RATIO = 565 / 800
THUMB_WIDTH = 400


class NotAnImage(Permanent):
    """The cover URL answered something that is not a picture."""


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def load(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise NotAnImage(f"cover is not a readable image: {e}") from None
    return img


def make_artwork(data: bytes) -> dict[str, bytes]:
    """``{"cover", "fanart", "poster", "thumb"}`` JPEG bytes from the downloaded cover."""
    img = load(data)
    w, h = img.size
    pw = min(w, max(1, round(h * POSTER_RATIO)))
    poster = img.crop((w - pw, 0, w, h))
    thumb = img.copy()
    thumb.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
    cover = data if img.format == "JPEG" else _jpeg(img)
    return {"cover": cover, "fanart": cover, "poster": _jpeg(poster), "thumb": _jpeg(thumb, 85)}


def resize_width(data: bytes, width: int) -> bytes:
    """A JPEG ``width`` pixels wide (never upscaled), for the cover endpoint's sizes."""
    img = load(data)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
    return _jpeg(img, 85)
