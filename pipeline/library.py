"""Library work of the cover stage: the cover and its artwork, sample stills, actor photos, the NFO.

Plain functions over a :class:`ResourceStore` and an :class:`HttpClient`: no Redis, no events,
no Dramatiq. Each is safe to run twice (what is on disk is kept), and each returns what it
did, so the caller can report it; a problem a user should hear of comes back as a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from pipeline import artwork, nfo
from pipeline.avid import Avid
from pipeline.config import LibraryConfig
from pipeline.errors import NassavError
from pipeline.http import HttpClient
from pipeline.store import ResourceStore

__all__ = ["CoverResult", "fetch_cover", "fetch_extras", "write_nfo", "site_root",
           "resolved_fields", "catalogue_fields", "video_fields"]


# -- what each stage records in the metadata JSON ---------------------------------------------

def resolved_fields(avid: Avid, record: Mapping[str, Any], outcomes: list[str],
                    meta: Mapping[str, Any]) -> dict[str, Any]:
    """The resolve stage's fields: the source record, the other sources' outcomes, the
    edition found (``edition``, "" for the regular one) unless a video is held already (its
    edition changes only with the video: the download stage and an upgrade record it), and
    the source's title unless a title is known already."""
    fields = {"source": record, "resolve_outcomes": outcomes, "source_title": record.get("title", "")}
    if not meta.get("video"):
        fields["edition"] = record.get("edition") or avid.edition
    if not meta.get("title"):
        fields["title"] = record.get("title", "")
    return fields


def catalogue_fields(entry: Mapping[str, Any], warnings: list[str], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The scrape stage's fields from a catalogue entry (as a dict); the title falls back to
    the one known already."""
    e = entry
    return dict(
        title=e.get("title") or meta.get("title", ""), original_title=e.get("title", ""),
        release_date=e.get("release_date", ""), runtime_min=e.get("runtime_min"),
        director=e.get("director", ""), studio=e.get("studio", ""), label=e.get("label", ""),
        series=e.get("series", ""), genres=e.get("genres", []), actors=e.get("actors", []),
        samples=e.get("samples", []),
        catalogue={"name": e.get("source"), "page_url": e.get("page_url"), "cover_url": e.get("cover_url")},
        scrape_warnings=warnings)


def video_fields(file_name: str, result: Any, now: float) -> dict[str, Any]:
    """The download stage's ``video`` record of a :class:`pipeline.hls.DownloadResult`."""
    return {"file": file_name, "bytes": result.bytes, "duration_s": round(result.duration_s, 3),
            "expected_duration_s": round(result.expected_duration_s, 3),
            "segments": result.segments, "completed_at": now}


@dataclass
class CoverResult:
    """What the cover step did: ``report`` goes on the stage's event; ``warning`` is set when
    no cover could be had."""

    report: dict[str, Any] = field(default_factory=dict)
    warning: str = ""


def fetch_cover(store: ResourceStore, client: HttpClient, avid: Avid, meta: Mapping[str, Any],
                lib: LibraryConfig, *, replace: bool = False) -> CoverResult:
    """The cover (catalogue's first, the source page's second) and, with ``write_poster``,
    fanart, poster and thumbnail; a cover already in the store is kept unless ``replace``
    (and then until a new one is had)."""
    if store.cover(avid).exists() and not replace:
        return CoverResult({"reused": True})
    catalogue, source = meta.get("catalogue") or {}, meta.get("source") or {}
    candidates = [(catalogue.get("cover_url"), catalogue.get("page_url")),
                  (source.get("cover_url"), source.get("page_url"))]
    errors = []
    for url, referer in candidates:
        if not url:
            continue
        try:
            # Catalogue CDNs want the site's root as Referer (FIELD_NOTES §2).
            r = client.get(url, referer=site_root(referer) if referer else None)
            if r.status != 200:
                errors.append(f"{url}: HTTP {r.status}")
                continue
            art = artwork.make_artwork(r.content)
        except NassavError as e:
            errors.append(str(e))
            continue
        store.write(store.cover(avid), art["cover"])
        if lib.write_poster:
            store.write(store.file(avid, "-fanart.jpg"), art["fanart"])
            store.write(store.file(avid, "-poster.jpg"), art["poster"])
            store.write(store.file(avid, "-thumb.jpg"), art["thumb"])
        store.update_meta(avid, cover_file=store.cover(avid).name)
        return CoverResult({"url": url})
    return CoverResult({"url": None, "errors": errors},
                       warning="no cover: " + ("; ".join(errors) or "no cover URL known"))


def fetch_extras(store: ResourceStore, client: HttpClient, avid: Avid, meta: Mapping[str, Any],
                 lib: LibraryConfig) -> dict[str, Any]:
    """Sample stills into ``extrafanart/`` and actor photos into ``.actors/``, when enabled;
    the actors' local photos are recorded in the metadata. Returns how many of each."""
    referer = site_root((meta.get("catalogue") or {}).get("page_url") or "") if meta.get("catalogue") else None
    out: dict[str, Any] = {}
    if lib.extrafanart and meta.get("samples"):
        out["extrafanart"] = sum(_save_image(store, client, url, referer, store.extrafanart(avid, i))
                                 for i, url in enumerate(meta["samples"], 1))
    if lib.actor_photos and meta.get("actors"):
        actors, got = [], 0
        for a in meta["actors"]:
            a = dict(a)
            if a.get("avatar_url") and a.get("name"):
                path, rel = store.actor_photo(avid, a["name"])
                if _save_image(store, client, a["avatar_url"], referer, path):
                    a["avatar_local"] = rel
                    got += 1
            actors.append(a)
        store.update_meta(avid, actors=actors)
        out["actor_photos"] = got
    return out


def write_nfo(store: ResourceStore, avid: Avid, lib: LibraryConfig, nfo_title: str = "translated") -> None:
    """The NFO from the metadata JSON, when ``library.write_nfo`` is on; ``nfo_title`` is
    ``translation.nfo_title`` (see :func:`pipeline.nfo.render`)."""
    if lib.write_nfo:
        meta = store.read_meta(avid) or {"avid": avid.code}
        store.write(store.nfo(avid), nfo.render(meta, nfo_title))


def site_root(url: str) -> str:
    """``https://host/`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _save_image(store: ResourceStore, client: HttpClient, url: str, referer: str | None, path: Path) -> bool:
    """Fetch a picture to ``path`` unless it is there already; only pictures land in the library."""
    if path.exists():
        return True
    try:
        r = client.get(url, referer=referer)
        if r.status != 200:
            return False
        artwork.load(r.content)
    except NassavError:
        return False
    store.write(path, r.content)
    return True
