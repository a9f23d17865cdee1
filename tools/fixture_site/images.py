"""Images of the fixture site, drawn with Pillow and cached in memory."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

COVER_W, COVER_H = 800, 538
# The poster is the right-hand crop of the cover, width = height × 565/800 (FIELD_NOTES §4).
POSTER_W = COVER_H * 565 // 800


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _colour(seed: str) -> tuple[int, int, int]:
    h = hashlib.sha256(seed.encode()).digest()
    return 40 + h[0] % 160, 40 + h[1] % 160, 40 + h[2] % 160


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@lru_cache(maxsize=256)
def cover_jpeg(avid: str) -> bytes:
    """An 800×538 cover: a dark 'back' on the left, a bright 'front' (the poster) on the right."""
    img = Image.new("RGB", (COVER_W, COVER_H), (30, 30, 45))
    draw = ImageDraw.Draw(img)
    front_x = COVER_W - POSTER_W
    draw.rectangle([front_x, 0, COVER_W, COVER_H], fill=_colour(avid))
    draw.line([front_x, 0, front_x, COVER_H], fill=(255, 255, 255), width=4)
    draw.text((30, 30), "BACK", fill=(120, 120, 140), font=_font(40))
    draw.text((30, COVER_H - 70), avid, fill=(160, 160, 180), font=_font(36))
    draw.text((front_x + 20, 40), "FRONT", fill=(255, 255, 255), font=_font(40))
    draw.text((front_x + 20, COVER_H // 2 - 30), avid, fill=(255, 255, 0), font=_font(52))
    return _jpeg(img)


@lru_cache(maxsize=256)
def sample_jpeg(avid: str, n: int) -> bytes:
    """A 640×360 still numbered ``n``."""
    img = Image.new("RGB", (640, 360), _colour(f"{avid}/{n}"))
    draw = ImageDraw.Draw(img)
    draw.text((20, 20), f"{avid} sample {n}", fill=(255, 255, 255), font=_font(36))
    return _jpeg(img)


@lru_cache(maxsize=256)
def actor_jpeg(n: int) -> bytes:
    """A 125×125 avatar."""
    img = Image.new("RGB", (125, 125), _colour(f"actor/{n}"))
    draw = ImageDraw.Draw(img)
    draw.ellipse([30, 15, 95, 80], fill=(230, 200, 180))
    draw.text((10, 95), f"actor {n}", fill=(255, 255, 255), font=_font(16))
    return _jpeg(img)


@lru_cache(maxsize=1)
def nowprinting_gif() -> bytes:
    """The placeholder JavBus shows when it has no avatar."""
    img = Image.new("RGB", (125, 125), (220, 220, 220))
    draw = ImageDraw.Draw(img)
    draw.text((8, 52), "NOW PRINTING", fill=(90, 90, 90), font=_font(14))
    buf = io.BytesIO()
    img.save(buf, "GIF")
    return buf.getvalue()
