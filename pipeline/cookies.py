"""Per-source cookies, set by hand through the API or fetched from a site's home page.

Stored in ``<data_dir>/cookies.json`` with mode 0600; never returned whole or logged:
:func:`mask` shows a short prefix only.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from pipeline.files import atomic_write

T = TypeVar("T")

# Owner-only: a cookie such as cf_clearance is a login that any local user could replay.
MODE = 0o600

# Serialises this process's read-modify-writes (the gateway runs them on a thread pool), so a
# set and a delete at once cannot drop each other's change.
_UPDATE_LOCK = threading.Lock()


def path(data_dir: Path) -> Path:
    return Path(data_dir) / "cookies.json"


def load(data_dir: Path) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: {str(a): str(b) for a, b in v.items()} for k, v in raw.items() if isinstance(v, dict)}


def save(data_dir: Path, cookies: Mapping[str, Mapping[str, str]]) -> None:
    atomic_write(path(data_dir), json.dumps(cookies, indent=1).encode(), mode=MODE)


def update(data_dir: Path, change: Callable[[dict[str, dict[str, str]]], T]) -> T:
    """The one read-modify-write of the jar: load it, let ``change`` edit it in place, save it
    when it changed; returns what ``change`` returns."""
    with _UPDATE_LOCK:
        jar = load(data_dir)
        before = copy.deepcopy(jar)
        result = change(jar)
        if jar != before:
            save(data_dir, jar)
        return result


def put(data_dir: Path, source: str, cookies: Mapping[str, str], *, merge: bool = False) -> None:
    """Store ``source``'s cookies: replacing what it had, or (``merge``) adding to it."""
    def change(jar: dict[str, dict[str, str]]) -> None:
        jar[source] = {**(jar.get(source, {}) if merge else {}), **cookies}
    update(data_dir, change)


def drop(data_dir: Path, source: str) -> bool:
    """Forget ``source``'s cookies; False when none were stored."""
    return update(data_dir, lambda jar: jar.pop(source, None) is not None)


def parse_header(text: str) -> dict[str, str]:
    """``"a=1; b=2"`` (a browser's Cookie header) → ``{"a": "1", "b": "2"}``."""
    out = {}
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            if k.strip():
                out[k.strip()] = v.strip()
    return out


def mask(cookies: Mapping[str, str]) -> str:
    """``"cf_clearance=AbCd…; sid=12…"``: enough to recognise, not enough to reuse."""
    return "; ".join(f"{k}={v[:4]}…" for k, v in cookies.items())
