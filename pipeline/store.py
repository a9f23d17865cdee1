"""The resource store: where each AVID's files live, written atomically.

Layout under the data dir (the truth about the library)::

    {AVID}/{AVID}.mp4  {AVID}.json  {AVID}.jpg  {AVID}-poster.jpg  {AVID}-fanart.jpg
           {AVID}-thumb.jpg  {AVID}.nfo  extrafanart/fanart{N}.jpg  .actors/{Name}.jpg
    .parts/{AVID}/     resumable download state (not part of the library)
    .cache/covers/{AVID}-{size}.jpg   resized covers (rebuilt on demand)

A title's video is ``{AVID}.mp4`` when downloaded; an import keeps the container
(``{AVID}.mkv``), splits parts (``{AVID}-cd1.avi``, ``{AVID}-cd2.avi``) or, in place, leaves
the file outside the folder. The ``video`` record of the metadata JSON names them (``file``,
``parts[].file``); :meth:`ResourceStore.videos` reads it, and the folder when it says nothing.

Every path is handed out by a method here; nobody else builds them from strings.

Paths are only ever built from a validated :class:`~pipeline.avid.Avid`, and every write
goes to a temp file in the same directory followed by ``os.replace``: a crash never leaves
a truncated file under a final name. Files get the mode of a normal file (``0666 & ~umask``)
or ``library.file_mode``; see :mod:`pipeline.files`.

The metadata JSON is read, changed and written under an exclusive ``flock`` on the AVID's
folder, so a worker's update and the gateway's user state (two processes, maybe two
machines on shared storage) never lose each other's fields.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

from pipeline.avid import Avid, parse
from pipeline.errors import InPlaceOriginal, InvalidAvid, OtherEdition
from pipeline.files import atomic_write, dir_mode_for, make_dirs
from pipeline.filenames import VIDEO_EXTENSIONS
from pipeline.jsontext import dumps_utf8

__all__ = ["SCHEMA_VERSION", "ResourceStore", "atomic_write"]

SCHEMA_VERSION = 1
COVER_CACHE = Path(".cache") / "covers"
ACTOR_PHOTOS = ".actors"
EXTRAFANART = "extrafanart"


class ResourceStore:
    """The library under ``root``.

    Parameters:
      file_mode: the exact mode of every library file written (``library.file_mode``,
        parsed); None gives normal files, ``0666 & ~umask``. Folders created for them follow
        (:func:`pipeline.files.dir_mode_for`).
    """

    def __init__(self, root: Path | str, *, file_mode: int | None = None):
        self.root = Path(root).resolve()
        self.file_mode = file_mode
        self.dir_mode = dir_mode_for(file_mode)

    def write(self, path: Path, data: bytes) -> None:
        """Write a library file atomically, with the library's file mode."""
        atomic_write(path, data, mode=self.file_mode, dir_mode=self.dir_mode)

    # -- paths -------------------------------------------------------------
    def dir(self, avid: Avid) -> Path:
        return self.root / _checked(avid)

    def _dir_str(self, avid: Avid) -> str:
        # dir() as a str: no Path objects on the submit path (has_video), issue 13.
        return os.path.join(self.root, _checked(avid))

    def file(self, avid: Avid, suffix: str) -> Path:
        """``suffix`` like ``.mp4`` or ``-poster.jpg``."""
        return self.dir(avid) / f"{avid.code}{suffix}"

    def video(self, avid: Avid) -> Path:
        """The title's first video file (part 1); ``{AVID}.mp4`` when it has none."""
        found = self.videos(avid)
        return found[0] if found else self.download_target(avid)

    def download_target(self, avid: Avid) -> Path:
        """Where a download writes the title's video."""
        return self.file(avid, ".mp4")

    def videos(self, avid: Avid, meta: Any = None) -> list[Path]:
        """Every non-empty video file of the title, in part order.

        The files the metadata JSON's ``video`` record names (``meta``, when the caller has
        read it already), those present; else the folder's ``{AVID}.ext`` and
        ``{AVID}-cdN.ext`` files. A record's path outside the folder counts only when the
        ``import`` record says it was imported in place from there: a hand-edited JSON cannot
        make the library serve any file of the machine."""
        if meta is None:
            meta = self.read_meta(avid)
        found = [p for p in self._recorded_videos(avid, meta) if _nonempty(p)]
        return found or self._folder_videos(avid)

    def _recorded_videos(self, avid: Avid, meta: Any) -> list[Path]:
        rec = meta.get("video") if isinstance(meta, dict) else None
        if not isinstance(rec, dict):
            return []
        parts = rec.get("parts")
        entries = parts if isinstance(parts, list) and parts else [rec]
        imp = meta.get("import")
        in_place = (set(str(f) for f in imp.get("files") or [] if isinstance(f, str))
                    if isinstance(imp, dict) and imp.get("mode") == "in-place" else set())
        out: list[Path] = []
        for entry in entries:
            name = entry.get("file") if isinstance(entry, dict) else None
            if not isinstance(name, str) or Path(name).suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if name in in_place and os.path.isabs(name):
                out.append(Path(name))
            elif _plain_name(name) and name.startswith(avid.code):
                out.append(self.dir(avid) / name)
        return out

    def _folder_videos(self, avid: Avid) -> list[Path]:
        """``{AVID}.ext`` (``.mp4`` first), then ``{AVID}-cdN.ext`` by N."""
        try:
            names = os.listdir(self.dir(avid))
        except OSError:
            return []
        ranked: list[tuple[int, int, str]] = []
        for name in names:
            m = _FOLDER_VIDEO.match(name)
            if not m or m.group("code") != avid.code or m.group("ext").lower() not in VIDEO_EXTENSIONS:
                continue
            part = int(m.group("part")) if m.group("part") else 0
            ranked.append((part, 0 if m.group("ext").lower() == ".mp4" else 1, name))
        return [p for p in (self.dir(avid) / n for _, _, n in sorted(ranked)) if _nonempty(p)]

    def meta(self, avid: Avid) -> Path:
        return self.file(avid, ".json")

    def cover(self, avid: Avid) -> Path:
        return self.file(avid, ".jpg")

    def nfo(self, avid: Avid) -> Path:
        return self.file(avid, ".nfo")

    def part_dir(self, avid: Avid) -> Path:
        return self.root / ".parts" / avid.code

    def cover_cache(self, avid: Avid, size: str) -> Path:
        """The cover resized to ``size`` (a name such as ``small``), cached outside the folder."""
        self.dir(avid)  # validates
        return self.root / COVER_CACHE / f"{avid.code}-{size}.jpg"

    def extrafanart(self, avid: Avid, n: int) -> Path:
        """The ``n``-th sample still (from 1), where Kodi/Jellyfin look for extra fanart."""
        return self.dir(avid) / EXTRAFANART / f"fanart{int(n)}.jpg"

    def actor_photo(self, avid: Avid, name: str) -> tuple[Path, str]:
        """Where an actor's photo goes: the path, and the folder-relative name the NFO and the
        metadata JSON record (Jellyfin/Kodi's ``.actors/First_Last.jpg``)."""
        rel = f"{ACTOR_PHOTOS}/{safe_name(name)}.jpg"
        return self.dir(avid) / rel, rel

    def find_actor_photo(self, avid: Avid, name: str) -> Path | None:
        """A photo of ``name`` in the AVID's ``.actors/`` folder, as written there or by hand."""
        d = self.dir(avid) / ACTOR_PHOTOS
        for n in {name, name.replace(" ", "_")}:
            if "/" in n:
                continue
            for ext in (".jpg", ".png", ".webp"):
                p = d / f"{n}{ext}"
                if p.is_file():
                    return p
        return None

    # -- state -------------------------------------------------------------
    def has_video(self, avid: Avid, meta: Any = None) -> bool:
        """Whether the title has any video (see :meth:`videos`)."""
        # The common case, a downloaded title, costs one stat; a title with no folder one more
        # (no folder: no metadata JSON, so no recorded file either; a submit asks this of every
        # new AVID and every duplicate, issue 13).
        folder = self._dir_str(avid)
        if _nonempty(os.path.join(folder, avid.code + ".mp4")):  # download_target(), as a str
            return True
        if meta is None and not os.path.isdir(folder):
            return False
        return bool(self.videos(avid, meta))

    def read_meta(self, avid: Avid) -> dict[str, Any] | None:
        try:
            return json.loads(self.meta(avid).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_meta(self, avid: Avid, meta: dict[str, Any]) -> dict[str, Any]:
        """Replace the metadata JSON with ``meta`` (stamped with schema, AVID and times)."""
        with self._meta_lock(avid):
            return self._write_meta(avid, meta)

    def update_meta(self, avid: Avid, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the metadata JSON (creating it when missing), under the
        folder's lock: a concurrent update of other fields is never lost."""
        with self._meta_lock(avid):
            meta = self.read_meta(avid) or {}
            meta.update(fields)
            return self._write_meta(avid, meta)

    def update_user(self, avid: Avid, user: dict[str, Any]) -> bool:
        """Keep the user's state (watched, favourite) in the metadata JSON, so a rebuild from
        disk keeps it. ``updated_at`` stays: it means "the metadata changed". False (and
        nothing written) when the AVID has no readable metadata."""
        if not self.dir(avid).is_dir():
            return False  # never create a folder for a user's click
        with self._meta_lock(avid):
            meta = self.read_meta(avid)
            if not isinstance(meta, dict):
                return False
            meta["user"] = user
            self.write(self.meta(avid), _dump(meta))
            return True

    def _write_meta(self, avid: Avid, meta: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        meta = dict(meta)
        meta["schema"] = SCHEMA_VERSION
        meta["avid"] = avid.code
        meta.setdefault("created_at", now)
        meta["updated_at"] = now
        self.write(self.meta(avid), _dump(meta))
        return meta

    @contextlib.contextmanager
    def _meta_lock(self, avid: Avid) -> Iterator[None]:
        """An exclusive flock on the AVID's folder (created if missing) for one read-modify-write.

        flock excludes other processes and other open descriptions in this one (each call
        opens its own), so worker threads and gateway threads serialise alike; the lock
        goes with the descriptor, so a crash cannot leave it held."""
        d = self.dir(avid)
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(d, flags)
        except FileNotFoundError:
            make_dirs(d, self.dir_mode)
            fd = os.open(d, flags)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def avids(self) -> Iterator[Avid]:
        """Every AVID folder in the data dir (folders that are not AVIDs are skipped)."""
        if not self.root.is_dir():
            return
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                try:
                    avid = parse(child.name)
                except ValueError:
                    continue
                if avid.code == child.name:
                    yield avid

    def held(self, avid: Avid) -> Avid | None:
        """The AVID as the code's folder holds it: its edition comes from the metadata JSON
        (the resolve stage records it; none recorded = no edition). None when there is no
        readable metadata."""
        meta = self.read_meta(avid)
        if not isinstance(meta, dict):
            return None
        edition = meta.get("edition") or ""
        try:
            held = parse(f"{avid.code}-{edition}" if edition else avid.code)
        except InvalidAvid:
            return None
        return held if held.code == avid.code else None

    def drop_cover_cache(self, avid: Avid, sizes: Iterable[str]) -> None:
        """Forget the AVID's resized covers (they are rebuilt on demand)."""
        for size in sizes:
            try:
                self.cover_cache(avid, size).unlink()
            except FileNotFoundError:
                pass

    def delete(self, avid: Avid) -> list[str] | None:
        """Remove the AVID's folder and its download parts; the files that went, or None when
        this call removed nothing of the library.

        One folder holds one code, in one edition: ``avid`` must name that edition (none for
        a folder without a recorded edition or without readable metadata), or
        :class:`OtherEdition` is raised and nothing is touched. Each directory is first
        renamed away, so a reader never sees it half-deleted, and one rename decides between
        concurrent deletes: the folder's, or the parts' when there is no folder. Parts go
        first, so a delete that finds the folder already gone also finds the parts gone.
        """
        d, parts = self.dir(avid), self.part_dir(avid)
        arbiter = d if d.exists() else parts
        if not arbiter.exists():
            return None
        held = self.held(avid)
        if (held.edition if held else "") != avid.edition:
            raise OtherEdition(avid.full, avid.code, held.full if held else None)
        tag = uuid.uuid4().hex
        won = False
        gone: dict[Path, list[str]] = {}
        for src in (parts, d):
            trash = src.with_name(f".deleting-{src.name}-{tag}")
            try:
                os.rename(src, trash)
            except FileNotFoundError:
                continue  # not there, or a concurrent delete renamed it first
            won = won or src == arbiter
            prefix = src.relative_to(self.root)
            gone[src] = sorted(str(prefix / p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())
            shutil.rmtree(trash, ignore_errors=True)
        return gone.get(d, []) + gone.get(parts, []) if won else None


    def delete_video(self, avid: Avid, *, originals: bool = False) -> list[str] | None:
        """Remove every video file of the AVID (all parts, an in-place import's too when
        ``originals``) and its download parts, keeping metadata, covers and NFO; the files that
        went, or None when there was none of them.

        An in-place import's video is the user's own file outside the data dir: without
        ``originals`` it raises :class:`InPlaceOriginal` before anything is touched. The edition
        rule is :meth:`delete`'s. Each is renamed away first, so of two concurrent calls one
        removes the files and the other gets None."""
        videos, parts = self.videos(avid), self.part_dir(avid)
        if not videos and not parts.exists():
            return None
        held = self.held(avid)
        if self.dir(avid).exists() and (held.edition if held else "") != avid.edition:
            raise OtherEdition(avid.full, avid.code, held.full if held else None)
        # Only a recorded in-place import may lie outside the data dir (see videos()).
        outside = [str(v) for v in videos if not v.is_relative_to(self.root)]
        if outside and not originals:
            raise InPlaceOriginal(avid.full, outside)
        tag = uuid.uuid4().hex
        gone: list[str] = []
        for src in (parts, *videos):
            trash = src.with_name(f".deleting-{src.name}-{tag}")
            try:
                os.rename(src, trash)
            except FileNotFoundError:
                continue
            # An in-place video lies outside the data dir: it is named by its full path.
            prefix = src.relative_to(self.root) if src.is_relative_to(self.root) else src
            if trash.is_dir():
                gone += sorted(str(prefix / p.relative_to(trash)) for p in trash.rglob("*") if p.is_file())
                shutil.rmtree(trash, ignore_errors=True)
            else:
                gone.append(str(prefix))
                trash.unlink(missing_ok=True)
        return gone or None


_FOLDER_VIDEO = re.compile(r"^(?P<code>[A-Za-z0-9-]+?)(?:-cd(?P<part>\d{1,3}))?(?P<ext>\.[A-Za-z0-9]+)$")


def _plain_name(name: str) -> bool:
    """A file name that stays in its folder."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _checked(avid: Avid) -> str:
    """The AVID's folder name, checked to stay in the data dir."""
    if not isinstance(avid, Avid):
        raise TypeError("paths are built from a validated Avid only")
    # Defence in depth: Avid validation already allows only letters, digits and hyphens.
    # (No resolve(): it costs a syscall per component on every request.)
    if not avid.code or "/" in avid.code or "\\" in avid.code or avid.code.startswith("."):
        raise ValueError(f"{avid.code!r} escapes the data dir")
    return avid.code


def _nonempty(path: Path | str) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def safe_name(name: str) -> str:
    """A file name from an actor's name: letters, digits, hyphens and underscores only, so it
    cannot leave its folder (Jellyfin/Kodi's ``First_Last``)."""
    cleaned = "".join(c if c.isalnum() or c in " -" else "_" for c in name).strip().replace(" ", "_")
    return cleaned[:80] or "actor"


def _dump(meta: dict[str, Any]) -> bytes:
    # dumps_utf8: an imported file's name that is not UTF-8 must not stop the record.
    return dumps_utf8(meta, indent=2)
