"""What a library index row is: the SQLite schema, a row built from one title's folder
(:func:`row_from_meta`), and a row in the API's list-item shape (:func:`item_from_row`).

Pure mapping, no connection: ``gateway/index.py`` owns the file and the queries.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Mapping

from pipeline.avid import Avid
from pipeline.editions import KNOWN, REGULAR, label
from pipeline.store import ResourceStore

# 3: the edition column (an older index is dropped and rebuilt from the folders).
SCHEMA_VERSION = 3
SEP = "\x1f"  # joins names in the list columns: splitting beats json.loads per row

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS resources (
    avid TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    original_title TEXT NOT NULL DEFAULT '',
    source_title TEXT NOT NULL DEFAULT '',
    translated_title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    release_date TEXT NOT NULL DEFAULT '',
    studio TEXT NOT NULL DEFAULT '',
    series TEXT NOT NULL DEFAULT '',
    runtime_min INTEGER,
    has_video INTEGER NOT NULL DEFAULT 0,
    has_cover INTEGER NOT NULL DEFAULT 0,
    video_bytes INTEGER,
    duration_s REAL,
    metadata_create_time REAL,
    metadata_update_time REAL,
    video_create_time REAL,
    genres TEXT NOT NULL DEFAULT '[]',
    actors TEXT NOT NULL DEFAULT '[]',
    genre_list TEXT NOT NULL DEFAULT '',
    actor_list TEXT NOT NULL DEFAULT '',
    search TEXT NOT NULL DEFAULT '',
    watched INTEGER NOT NULL DEFAULT 0,
    is_favorite INTEGER NOT NULL DEFAULT 0,
    user_updated_at REAL,
    edition TEXT NOT NULL DEFAULT ''
);
-- One index per sort order, the avid tie-breaker included, so a page is read off the index.
CREATE INDEX IF NOT EXISTS resources_mct ON resources (metadata_create_time, avid);
CREATE INDEX IF NOT EXISTS resources_mut ON resources (metadata_update_time, avid);
CREATE INDEX IF NOT EXISTS resources_vct ON resources (video_create_time, avid);
CREATE INDEX IF NOT EXISTS resources_vct_nulls_last ON resources ((video_create_time IS NULL), video_create_time, avid);
CREATE INDEX IF NOT EXISTS resources_source ON resources (source, avid);
CREATE INDEX IF NOT EXISTS resources_rd ON resources (release_date, avid);
CREATE INDEX IF NOT EXISTS resources_video ON resources (has_video);
CREATE INDEX IF NOT EXISTS resources_edition ON resources (edition, avid);
CREATE TABLE IF NOT EXISTS genres (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS actors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                                   avatar_url TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS resource_genres (avid TEXT NOT NULL, genre_id INTEGER NOT NULL,
                                            PRIMARY KEY (genre_id, avid));
CREATE TABLE IF NOT EXISTS resource_actors (avid TEXT NOT NULL, actor_id INTEGER NOT NULL,
                                            PRIMARY KEY (actor_id, avid));
CREATE INDEX IF NOT EXISTS resource_genres_avid ON resource_genres (avid);
CREATE INDEX IF NOT EXISTS resource_actors_avid ON resource_actors (avid);
-- Substring search without a full scan: a trigram index over the same text as
-- resources.search, keyed by the resource's rowid.
CREATE VIRTUAL TABLE IF NOT EXISTS resources_fts USING fts5(search, tokenize='trigram');
"""

COLUMNS = ("avid", "title", "original_title", "source_title", "translated_title", "source",
            "release_date", "studio", "series", "runtime_min", "has_video", "has_cover",
            "video_bytes", "duration_s", "metadata_create_time", "metadata_update_time",
            "video_create_time", "genres", "actors", "genre_list", "actor_list", "search", "edition")
# The user's own columns are set on insert (from the JSON's ``user`` block) and never
# overwritten by a metadata update: the row is their truth while it exists.
USER_COLUMNS = ("watched", "is_favorite", "user_updated_at")


def row_from_meta(avid: Avid, meta: Mapping[str, Any] | None, store: ResourceStore) -> dict[str, Any] | None:
    """The row for ``avid`` from its metadata JSON and the files beside it (None: nothing there)."""
    cover_path = store.cover(avid)
    # Every part, in any container, in place too (see ResourceStore.videos).
    videos = store.videos(avid, meta)
    has_video = bool(videos)
    if not isinstance(meta, Mapping):
        meta = None  # unreadable or not an object: index what the files say
    if meta is None and not has_video:
        return None
    meta = dict(meta or {})
    src = as_mapping(meta.get("source"))
    video = as_mapping(meta.get("video"))
    genres = [str(g) for g in as_list(meta.get("genres")) if g]
    actors = [{"name": str(a.get("name", "")), "avatar_url": str(a.get("avatar_url") or "")}
              for a in as_list(meta.get("actors")) if isinstance(a, dict) and a.get("name")]
    video_ct = video.get("completed_at")
    if has_video and not video_ct:
        video_ct = _mtime(videos[0])
    created = meta.get("created_at") or _mtime(store.meta(avid)) or video_ct
    updated = meta.get("updated_at") or created
    titles = [str(meta.get(k) or "") for k in ("title", "original_title", "source_title", "translated_title")]
    search = " ".join([avid.code] + [t for t in titles if t] + [a["name"] for a in actors]).lower()
    user = as_mapping(meta.get("user"))
    text = lambda k: str(meta.get(k) or "")  # noqa: E731
    return {
        "avid": avid.code,
        "title": text("title"),
        "original_title": text("original_title"),
        "source_title": text("source_title") or str(src.get("title") or ""),
        "translated_title": text("translated_title"),
        "source": str(src.get("name") or ""),
        "release_date": text("release_date"),
        "studio": text("studio"),
        "series": text("series"),
        "runtime_min": _int(meta.get("runtime_min")),
        "has_video": int(has_video),
        "has_cover": int(cover_path.exists()),
        "video_bytes": (_int(video.get("bytes")) or _total_size(videos)) if has_video else None,
        "duration_s": _float(video.get("duration_s")) if has_video else None,
        "metadata_create_time": _float(created),
        "metadata_update_time": _float(updated),
        "video_create_time": _float(video_ct) if has_video else None,
        "genres": json.dumps(genres, ensure_ascii=False),
        "actors": json.dumps(actors, ensure_ascii=False),
        "genre_list": SEP.join(g.replace(SEP, " ") for g in genres),
        "actor_list": SEP.join(a["name"].replace(SEP, " ") for a in actors),
        "search": search,
        "edition": _edition(meta.get("edition")),
        "watched": int(bool(user.get("watched"))),
        "is_favorite": int(bool(user.get("is_favorite"))),
        "user_updated_at": _float(user.get("updated_at")),
    }


def _edition(v: Any) -> str:
    """The metadata JSON's ``edition`` as a code (``""`` = regular); anything unknown is regular."""
    code = str(v or "").strip().upper()
    return code if code in KNOWN.values() else REGULAR


def as_mapping(v: Any) -> Mapping[str, Any]:
    """``v`` when it is a mapping, else an empty one (metadata written by hand can be anything)."""
    return v if isinstance(v, Mapping) else {}


def as_list(v: Any) -> list[Any]:
    """``v`` when it is a list, else an empty one."""
    return v if isinstance(v, list) else []


def _total_size(paths: list[Path]) -> int | None:
    try:
        return sum(p.stat().st_size for p in paths) or None
    except OSError:
        return None


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:
        return None


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def item_from_row(r: sqlite3.Row) -> dict[str, Any]:
    """A row in the old client's list-item shape (plus a few fields it can ignore)."""
    return {
        "avid": r["avid"], "title": r["title"], "original_title": r["original_title"],
        "source_title": r["source_title"], "translated_title": r["translated_title"],
        "source": r["source"], "release_date": r["release_date"], "studio": r["studio"],
        "series": r["series"], "runtime_min": r["runtime_min"],
        "has_video": bool(r["has_video"]), "has_cover": bool(r["has_cover"]),
        "video_bytes": r["video_bytes"], "duration_s": r["duration_s"],
        "watched": bool(r["watched"]), "is_favorite": bool(r["is_favorite"]),
        "metadata_create_time": r["metadata_create_time"], "metadata_update_time": r["metadata_update_time"],
        "video_create_time": r["video_create_time"],
        "genres": r["genre_list"].split(SEP) if r["genre_list"] else [],
        "actors": r["actor_list"].split(SEP) if r["actor_list"] else [],
        "edition": label(r["edition"]),
    }
