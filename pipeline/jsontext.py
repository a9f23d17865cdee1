"""JSON as UTF-8 bytes that survives file names which are not UTF-8.

A name from an old Windows share (Shift-JIS, GBK) decodes with lone surrogates
(``os.fsdecode``), which UTF-8 cannot encode: ``json.dumps(..., ensure_ascii=False).encode()``
raises ``UnicodeEncodeError``. Here they become JSON escapes (``\\udc8f``), which
``json.loads`` reads back to the same name, while every other character stays readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["dumps_utf8"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps_utf8(obj: Any, **kw: Any) -> bytes:
    """``json.dumps(obj, ensure_ascii=False, **kw)`` as UTF-8, lone surrogates escaped."""
    text = json.dumps(obj, ensure_ascii=False, **kw)
    try:
        return text.encode()
    except UnicodeEncodeError:  # rare: only then is the text scanned
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
