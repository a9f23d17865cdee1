"""The original client's shapes, built from nassav's metadata JSON and index row.

Pure functions, no I/O: the handlers read the store and the index and pass what they read.
Every field name here is one the old client (or the generation before it) reads.
"""

from __future__ import annotations

from typing import Any, Mapping

from gateway.index_rows import as_list, as_mapping

# The old server wrote a title's length as "N分钟" (N minutes); the client prints it as is.
MINUTES = "分钟"


def _names(items: Any) -> list[str]:
    """Names from a list of names or of ``{name, …}`` objects (the JSON holds objects)."""
    out = []
    for x in as_list(items):
        name = x.get("name") if isinstance(x, Mapping) else x
        if isinstance(name, str) and name:
            out.append(name)
    return out


def _text(meta: Mapping[str, Any], key: str) -> str:
    v = meta.get(key)
    return v if isinstance(v, str) else ""


def duration_s(meta: Mapping[str, Any]) -> float | None:
    """The video's measured length, else the catalogue's runtime, in seconds."""
    video = as_mapping(meta.get("video"))
    for value, scale in ((video.get("duration_s"), 1), (meta.get("runtime_min"), 60)):
        try:
            if value not in (None, "") and float(value) > 0:
                return float(value) * scale
        except (TypeError, ValueError):
            continue
    return None


def duration_text(meta: Mapping[str, Any]) -> str:
    """``"120分钟"`` as the old server wrote it; "" when no length is known."""
    secs = duration_s(meta)
    return f"{int(secs // 60)}{MINUTES}" if secs else ""


def resource(code: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The short resource the old add/refresh answers carry (``data.resource``)."""
    return {"avid": code, "title": _text(meta, "title") or _text(meta, "source_title"),
            "original_title": _text(meta, "original_title"), "source_title": _text(meta, "source_title"),
            "translated_title": _text(meta, "translated_title"),
            "source": _text(as_mapping(meta.get("source")), "name")}


def metadata(code: str, meta: Mapping[str, Any], *, video_bytes: int | None,
             user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The flat ``GET /resource/metadata`` (and older ``/downloads/metadata``) object."""
    user = user or as_mapping(meta.get("user"))
    out = resource(code, meta)
    out.update({
        "release_date": _text(meta, "release_date"), "duration": duration_text(meta),
        "director": _text(meta, "director"), "studio": _text(meta, "studio"),
        "label": _text(meta, "label"), "series": _text(meta, "series"),
        "actors": _names(meta.get("actors")), "genres": _names(meta.get("genres")),
        "m3u8": _text(as_mapping(meta.get("source")), "playlist_url"),
        "file_exists": video_bytes is not None, "file_size": video_bytes,
        "watched": bool(user.get("watched")), "is_favorite": bool(user.get("is_favorite")),
    })
    return out


def full_resource(code: str, meta: Mapping[str, Any], *, video_bytes: int | None,
                  user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The resource object of the v1.3.2 refresh and batch answers (``duration`` in seconds)."""
    flat = metadata(code, meta, video_bytes=video_bytes, user=user)
    secs = duration_s(meta)
    flat["duration"] = int(secs) if secs else None
    for k in ("director", "studio", "label", "series"):
        flat.pop(k)
    return flat


def list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One item of the older generation's ``GET /resource/list``."""
    return {"avid": row["avid"], "title": row.get("title") or row.get("source_title") or "",
            "source": row.get("source") or "", "release_date": row.get("release_date") or "",
            "has_video": bool(row.get("has_video"))}


def failure_code(message: str) -> int:
    """The old add's status for a failed metadata job: 404 when every source said "not
    found", 403 when one blocked us, 502 for anything else upstream."""
    parts = [p for p in message.split(";") if p.strip()]
    if parts and all("not found" in p for p in parts):
        return 404
    if "blocked" in message or "403" in message:
        return 403
    return 502
