"""The plan of ``nassav import``: which file of a collection goes where, or why it stays.

Walks a folder, identifies each video's AVID (:mod:`pipeline.filenames`), groups the parts of
one title, picks the library path of each file and compares it with what the library holds.
It reads the file system and changes nothing: the dry run prints this plan, and the import
(:mod:`pipeline.import_run`) carries it out.

Library layout of an imported title (the download's, with the file's own extension)::

    {AVID}/{AVID}.mkv                     one file
    {AVID}/{AVID}-cd1.mp4, {AVID}-cd2.mp4  parts, in order, with one NFO
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.avid import Avid
from pipeline.errors import NassavError
from pipeline.filenames import Identified, identify, is_video
from pipeline.store import ResourceStore

MODES = ("move", "hardlink", "copy", "in-place")
MODES_FORM = "one of move, hardlink, copy or in-place"

# What becomes of a file (``Item.action``).
PLACE = "place"          # goes into the library (or gets metadata where it is, in-place)
DONE = "done"            # imported by an earlier run: nothing to do
CONFLICT = "conflict"    # the library holds a different file for that AVID: both stay
DUPLICATE = "duplicate"  # another file of the collection is the same title (and part)
SKIPPED = "skipped"      # not identified, or not a video: stays where it is
ACTIONS = (PLACE, DONE, CONFLICT, DUPLICATE, SKIPPED)


class ImportRefused(NassavError):
    """The import cannot start (bad path, mode, or a hardlink across devices)."""

    retriable = False


@dataclass
class Item:
    """One file of the collection and what the import does with it."""

    source: Path
    action: str
    avid: Avid | None = None
    part: int | None = None
    target: Path | None = None
    reason: str = ""
    size_bytes: int = 0

    def to_dict(self) -> dict:
        return {"file": str(self.source), "action": self.action,
                "avid": self.avid.full if self.avid else None, "part": self.part,
                "target": str(self.target) if self.target else None, "reason": self.reason,
                "size_bytes": self.size_bytes}


@dataclass
class Title:
    """The files of one AVID that the import places (parts in order), and its other files."""

    avid: Avid
    items: list[Item] = field(default_factory=list)

    @property
    def placing(self) -> list[Item]:
        return [i for i in self.items if i.action == PLACE]


@dataclass
class Plan:
    root: Path
    mode: str
    items: list[Item]
    titles: dict[str, Title]  # by AVID code: titles with at least one file to place or done

    def counts(self) -> dict[str, int]:
        out = {a: 0 for a in ACTIONS}
        for i in self.items:
            out[i.action] += 1
        return out

    def to_dict(self) -> dict:
        return {"path": str(self.root), "mode": self.mode, "counts": self.counts(),
                "items": [i.to_dict() for i in self.items]}


def check_source(path: str | Path, store: ResourceStore, mode: str) -> Path:
    """The folder to import, resolved; :class:`ImportRefused` names what is wrong with it.

    Refused: a mode not in :data:`MODES`, a path that is no readable folder, a folder inside
    the library or holding it, and ``hardlink`` from another device than the library's."""
    if mode not in MODES:
        raise ImportRefused(f"mode {mode!r} is not {MODES_FORM}")
    root = Path(os.path.abspath(os.path.expanduser(str(path))))
    if not root.is_dir():
        raise ImportRefused(f"{root} is not a folder (give the folder that holds the videos)")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ImportRefused(f"{root} cannot be read by this process")
    try:
        root = root.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop is a RuntimeError before Python 3.13
        raise ImportRefused(f"{root} cannot be resolved: {e}") from None
    lib = store.root
    if root == lib or lib in root.parents or root in lib.parents:
        raise ImportRefused(f"{root} overlaps the library {lib}; import from a folder outside it")
    if mode == "hardlink":
        lib_dev = _device(lib)
        if lib_dev is not None and os.stat(root).st_dev != lib_dev:
            raise ImportRefused(f"hardlinks cannot cross devices: {root} and the library {lib} are on "
                                "different file systems; use --mode copy or move")
    return root


def _device(path: Path) -> int | None:
    """The device of ``path`` or of its nearest existing parent (the library may not exist yet)."""
    for p in (path, *path.parents):
        try:
            return os.stat(p).st_dev
        except FileNotFoundError:
            continue
    return None


def walk(root: Path, errors: list[OSError] | None = None) -> Iterator[Path]:
    """Every file under ``root``, sorted, without hidden files or folders; a symbolic link to
    a folder is yielded as it is, not followed (so the plan can say why its files stay);
    folders that cannot be read go to ``errors``."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append if errors is not None else None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]  # os.walk skips them
        for name in sorted(filenames + links):
            if not name.startswith("."):
                yield Path(dirpath) / name


def target_name(avid: Avid, part: int | None, suffix: str) -> str:
    """``ABC-123.mp4``, or ``ABC-123-cd2.mp4`` for part 2 (Jellyfin/Kodi's multi-part naming)."""
    return f"{avid.code}{f'-cd{part}' if part else ''}{suffix.lower()}"


def build(root: Path, store: ResourceStore, mode: str) -> Plan:
    """The plan for the files under ``root`` (already checked by :func:`check_source`)."""
    items: list[Item] = []
    by_code: dict[str, list[Item]] = {}
    unreadable: list[OSError] = []
    for path in walk(root, unreadable):
        try:
            st = path.lstat()
        except OSError as e:
            items.append(Item(path, SKIPPED, reason=f"cannot be read: {e.strerror}"))
            continue
        if path.is_symlink():
            why = ("a symbolic link to a folder, not followed (import that folder itself)" if path.is_dir()
                   else "a symbolic link (import the file it points to)")
            items.append(Item(path, SKIPPED, reason=why))
            continue
        if not is_video(path):
            items.append(Item(path, SKIPPED, reason=f"not a video file ({path.suffix or 'no extension'})"))
            continue
        if st.st_size == 0:
            items.append(Item(path, SKIPPED, reason="an empty file"))
            continue
        found = identify(path.name)
        if not isinstance(found, Identified):
            items.append(Item(path, SKIPPED, reason=found.reason))
            continue
        item = Item(path, PLACE, avid=found.avid, part=found.part, size_bytes=st.st_size)
        items.append(item)
        by_code.setdefault(found.avid.code, []).append(item)
    for e in unreadable:
        items.append(Item(Path(e.filename or root), SKIPPED, reason=f"a folder that cannot be read: {e.strerror}"))
    titles = {}
    for code, group in by_code.items():
        title = _plan_title(group, store, mode)
        if title.items and any(i.action in (PLACE, DONE) for i in title.items):
            titles[code] = title
    return Plan(root, mode, items, titles)


def _plan_title(group: list[Item], store: ResourceStore, mode: str) -> Title:
    """Targets, duplicates and conflicts of the files of one AVID (changes ``group``'s items)."""
    # One file per part; a file without a part beside parts is a duplicate of part 1.
    parts: dict[int, Item] = {}
    single = [i for i in group if i.part is None]
    with_part = sorted((i for i in group if i.part is not None), key=lambda i: (i.part, str(i.source)))
    keep: list[Item] = []
    if with_part and len({i.part for i in with_part}) > 1:
        for i in with_part:
            if i.part in parts:
                _dup(i, parts[i.part])
            else:
                parts[i.part] = i
                keep.append(i)
        for i in single:
            _dup(i, parts[min(parts)])
    else:
        # One part alone ("ABC-123-A.mp4" with no "-B") is the whole title, not part 1.
        ordered = single + with_part
        first = ordered[0]
        first.part = None
        keep.append(first)
        for i in ordered[1:]:
            _dup(i, first)
    avid = next((i.avid for i in keep if i.avid and i.avid.edition), keep[0].avid)
    for i in keep:
        i.avid = avid
        i.target = (i.source if mode == "in-place"
                    else store.dir(avid) / target_name(avid, i.part, i.source.suffix))
    against_library(keep, store, mode)
    return Title(avid, keep)


def _dup(item: Item, kept: Item) -> None:
    item.action = DUPLICATE
    item.reason = (f"the same title as {kept.source} ({item.size_bytes} bytes against "
                   f"{kept.size_bytes}); left where it is")


def library_videos(store: ResourceStore, avid: Avid) -> list[Path]:
    """The video files in the AVID's library folder (downloaded or imported)."""
    d = store.dir(avid)
    try:
        return sorted(p for p in d.iterdir() if p.is_file() and is_video(p) and not p.name.startswith("."))
    except OSError:
        return []


def against_library(keep: list[Item], store: ResourceStore, mode: str) -> None:
    """DONE for files an earlier run imported; CONFLICT (all of the title's files) when the
    library holds a video for the AVID that is not this import's. The plan calls it, and the
    run again once it holds the AVID's claim: the library may have changed in between."""
    avid = keep[0].avid
    held = library_videos(store, avid)
    meta = store.read_meta(avid) or {}
    imported = meta.get("import") or {}
    if mode == "in-place":
        if held:
            _conflict(keep, held, "the library already holds a video for")
            return
        earlier = set(imported.get("files") or [])
        for i in keep:
            if str(i.source) in earlier and imported.get("state") == "done":
                i.action = DONE
        return
    targets = {i.target for i in keep}
    strangers = [p for p in held if p not in targets]
    differing = [i.target for i in keep if i.target in held and not same_content(i.source, i.target, mode)]
    if strangers or differing:
        _conflict(keep, strangers + differing, "the library already holds a different file for")
        return
    for i in keep:
        if i.target in held and imported.get("state") == "done":
            i.action = DONE


def _conflict(keep: list[Item], held: list[Path], why: str) -> None:
    theirs = "; ".join(describe(p) for p in held)
    for i in keep:
        i.action = CONFLICT
        i.reason = f"{why} {i.avid.code}: {theirs}; this file: {describe(i.source)}; both left as they are"


def same_content(source: Path, target: Path, mode: str) -> bool:
    """True when ``target`` is ``source`` as an earlier run placed it: the same file (a
    hardlink), or a copy of the same size. (A move leaves no source to compare.)"""
    try:
        if os.path.samefile(source, target):
            return True
        return mode == "copy" and source.stat().st_size == target.stat().st_size
    except OSError:
        return False


_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def duration_s(path: Path, ffmpeg: str | None = None) -> float | None:
    """The container's duration as ffmpeg reads it, or None when it cannot tell."""
    from pipeline.hls.remux import ffmpeg_exe

    try:
        out = subprocess.run([ffmpeg_exe(ffmpeg), "-hide_banner", "-nostdin", "-i", str(path)],
                             capture_output=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _DURATION.search(out)
    if not m:
        return None
    return round(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)), 2)


def describe(path: Path) -> str:
    """``/x/ABC-123.mp4 (1234 bytes, 61.5 s)``: what a conflict report shows of a file."""
    try:
        size = f"{path.stat().st_size} bytes"
    except OSError:
        size = "unreadable"
    d = duration_s(path)
    return f"{path} ({size}, {f'{d} s' if d is not None else 'duration unknown'})"
