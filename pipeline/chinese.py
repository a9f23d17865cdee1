"""Traditional → Simplified Chinese of the catalogue's words, with OpenCC.

The catalogue's pages are Traditional Chinese; most users read Simplified. With
``translation.chinese_conversion: t2s`` the title, genres, label, series and studio are
converted as they land in the metadata; ``original_title`` keeps the catalogue's own text.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Mapping

__all__ = ["CONVERTED", "converter", "converted_fields"]

CONVERTED = ("title", "label", "series", "studio", "genres")
_lock = threading.Lock()  # one converter per process, shared by the stage threads


@functools.lru_cache(maxsize=None)
def _opencc(config: str) -> Any:
    import opencc  # imported on first use: off by default, and loading its dictionaries takes time

    return opencc.OpenCC(config)


def converter(conversion: str) -> Callable[[str], str] | None:
    """A text → text function for ``conversion`` (``t2s``), or None for ``none``."""
    if conversion == "none":
        return None
    if conversion != "t2s":
        raise ValueError(f"unknown Chinese conversion {conversion!r} (none or t2s)")
    cc = _opencc("t2s")

    def convert(text: str) -> str:
        with _lock:
            return cc.convert(text)
    return convert


def converted_fields(meta: Mapping[str, Any], conversion: str) -> dict[str, Any]:
    """The fields of :data:`CONVERTED` that ``conversion`` changes, converted (empty for none)."""
    convert = converter(conversion)
    if convert is None:
        return {}
    out: dict[str, Any] = {}
    for key in CONVERTED:
        value = meta.get(key)
        if isinstance(value, str) and value:
            new: Any = convert(value)
        elif key == "genres" and isinstance(value, list):
            new = [convert(g) if isinstance(g, str) else g for g in value]
        else:
            continue
        if new != value:
            out[key] = new
    return out
