"""JSON from clients (HTTP bodies, WebSocket messages), parsed with a nesting limit.

``json.loads`` of 100,000 ``[`` raises ``RecursionError``, which no handler expected: a 500
with a traceback in the log, and on the WebSocket a dead connection. Anything nested deeper
than any request needs (:data:`MAX_DEPTH`) is refused too, so code that walks a body
recursively (``pipeline/overrides.merge``) never meets a deep one.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class JsonRefused(ValueError):
    """Client JSON that is not valid or nests too deep; the message says which."""


class TooDeep(JsonRefused):
    """Valid or not, the JSON nests deeper than :data:`MAX_DEPTH`."""


def loads(raw: str | bytes) -> Any:
    """Parse ``raw``; raise :class:`JsonRefused` for invalid JSON or nesting over MAX_DEPTH."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise TooDeep(_too_deep()) from None
    except ValueError:  # includes UnicodeDecodeError
        raise JsonRefused("not valid JSON") from None
    if _deeper_than(value, MAX_DEPTH):
        raise TooDeep(_too_deep())
    return value


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels of arrays and objects"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` containers (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False
