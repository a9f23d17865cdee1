"""Carrying out an import plan: place each title's files, then give it its metadata.

Per title (an AVID with its parts), in this order:

1. take the AVID's claim (``Hooks.take``): a title with a job in progress is left for later;
2. look the AVID up in the catalogues (``Hooks.lookup``): a title no catalogue knows stays
   where it is, reported with the reason;
3. write the journal entry (``{data}/.import/pending/{AVID}.json``: every source → target);
4. record the catalogue fields in the metadata JSON, then place the files: ``move`` links
   the file into place and unlinks the old name (``link`` fails where ``rename`` would replace
   a file that appeared meanwhile; across file systems: copy to a temp file beside the target,
   fsync, link it into place, then unlink the source), ``copy`` the same without the unlink,
   ``hardlink`` links, ``in-place`` leaves the file and writes NFO and artwork beside it;
5. cover, artwork and NFO (``Hooks.finish``), the ``video`` and ``import`` records, and the
   journal entry is removed.

Nothing is ever overwritten: a target that exists is either this file already (an earlier
run) or a conflict found by the plan. A run killed anywhere is finished by the next one:
:meth:`Importer.resume` replays the journal's entries before the new plan is made.
"""

from __future__ import annotations

import errno
import filecmp
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from pipeline import logs
from pipeline.avid import Avid, parse
from pipeline.diskspace import DiskSpace
from pipeline.errors import NassavError
from pipeline.files import atomic_write, fsync_path, make_dirs
from pipeline.import_plan import CONFLICT, PLACE, SKIPPED, Item, Plan, Title, against_library, same_content
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.import")

CHUNK_BYTES = 8 << 20
JOURNAL = Path(".import") / "pending"
# Files of the library folder copied beside an in-place video, under the video's own stem.
_BESIDE = {".nfo": ".nfo", ".jpg": ".jpg", "-poster.jpg": "-poster.jpg", "-fanart.jpg": "-fanart.jpg"}


class Hooks(Protocol):
    """What the import asks of the service around it (claims, catalogues, artwork)."""

    def take(self, avid: Avid) -> str | None:
        """Claim the AVID; a job id, or None when another job holds it. Raises a
        :class:`~pipeline.errors.NassavError` when the submit path refuses the AVID."""

    def release(self, avid: Avid, job_id: str, ok: bool, message: str) -> None:
        """End the claim taken by :meth:`take`."""

    def lookup(self, avid: Avid) -> tuple[dict[str, Any] | None, list[str]]:
        """The catalogue's metadata fields for the AVID (None when no catalogue has it) and
        the catalogues' warnings."""

    def finish(self, avid: Avid) -> list[str]:
        """Cover, artwork and NFO from the metadata JSON; the warnings."""

    def touch(self, avid: Avid) -> None:
        """Still working on the AVID (a long copy): keeps its claim from looking abandoned."""


@dataclass
class Progress:
    done: int
    total: int
    item: Item


class Importer:
    """Runs a :class:`Plan` against a store; ``on_item`` hears every file's outcome."""

    def __init__(self, store: ResourceStore, hooks: Hooks, *,
                 on_item: Callable[[Progress], None] | None = None, space: DiskSpace | None = None):
        """``space``: the free-space guard (``download.min_free_gb``); a title whose copy would
        take the disk under it stays where it is. None: no guard."""
        self.store, self.hooks, self.space = store, hooks, space
        self.on_item = on_item or (lambda p: None)
        self.journal = store.root / JOURNAL
        self.left_in_journal: list[str] = []  # titles :meth:`resume` could not finish, with why

    # -- the journal ----------------------------------------------------------------------
    def _entry(self, avid: Avid) -> Path:
        return self.journal / f"{avid.code}.json"

    def pending(self) -> list[dict[str, Any]]:
        """The journal's entries: titles a killed run had started placing."""
        out = []
        try:
            paths = sorted(self.journal.glob("*.json"))
        except OSError:
            return out
        for p in paths:
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                p.unlink(missing_ok=True)  # a torn entry is never written (atomic); stray junk
        return out

    def resume(self) -> list[str]:
        """Finish every title a killed run left in the journal; the AVIDs finished."""
        finished = []
        for entry in self.pending():
            avid = parse(entry["avid"])
            items = [Item(Path(f["source"]), PLACE, avid=avid, part=f.get("part"), target=Path(f["target"]))
                     for f in entry["files"]]
            try:
                job_id = self.hooks.take(avid)
            except NassavError as e:
                log.warning("%s left in the journal: %s", avid.code, e)
                continue
            if job_id is None:
                continue  # another job holds it; the next run tries again
            try:
                self._place_and_finish(avid, items, entry["mode"], entry.get("root", ""), entry.get("meta"),
                                       kept=entry.get("beside_kept"))
            except OSError as e:
                # One title that cannot be finished (its original deleted after a killed copy,
                # a folder unmounted) must not fail every later import: it stays in the
                # journal, named in this run's message, and the run goes on.
                self.hooks.release(avid, job_id, False, f"import not finished: {e}")
                log.warning("%s left in the journal: %s", avid.code, e)
                self.left_in_journal.append(f"{avid.code} ({e.strerror or e})")
                continue
            self.hooks.release(avid, job_id, True, f"{avid.code} imported (resumed)")
            finished.append(avid.code)
        return finished

    # -- the run --------------------------------------------------------------------------
    def run(self, plan: Plan) -> Plan:
        """Carry out ``plan`` (its items' actions and reasons are updated); returns it."""
        total, done = len(plan.items), 0
        in_titles = {id(i) for t in plan.titles.values() for i in t.items}
        for item in plan.items:
            if id(item) not in in_titles:
                done += 1
                self.on_item(Progress(done, total, item))
        for title in plan.titles.values():
            with logs.context(avid=title.avid.code, stage="import"):
                self._title(title, plan)
            for item in title.items:
                done += 1
                self.on_item(Progress(done, total, item))
        return plan

    def _title(self, title: Title, plan: Plan) -> None:
        placing = title.placing
        if not placing:
            return
        avid = title.avid
        low = self._no_room(placing, plan.mode)
        if low:
            _leave(placing, low)
            return
        try:
            job_id = self.hooks.take(avid)
        except NassavError as e:  # a guard of the submit script said no (e.g. a blocklist)
            _leave(placing, f"refused: {e}")
            return
        if job_id is None:
            _leave(placing, f"a job for {avid.code} is in progress; import it again when it ends")
            return
        # The plan looked at the library before the run reached this title; a download (or
        # another import) may have landed since. Under the claim nothing lands any more:
        # look again, before the journal or the metadata JSON is touched.
        against_library(placing, self.store, plan.mode)
        if any(i.action != PLACE for i in placing):
            conflict = next((i.reason for i in placing if i.action == CONFLICT), "")
            self.hooks.release(avid, job_id, not conflict, conflict or f"{avid.code} was imported meanwhile")
            return
        # The collection may have changed too (files moved away during a long run): a title
        # with a file gone is left before its journal entry or metadata JSON is written.
        gone = [i.source for i in placing if not os.path.lexists(i.source)]
        if gone:
            why = f"{gone[0]} is gone since the plan was made; not imported (run the import again)"
            _leave(placing, why)
            self.hooks.release(avid, job_id, False, why)
            return
        try:
            fields, warnings = self.hooks.lookup(avid)
            if fields is None:
                why = f"no catalogue has metadata for {avid.code}"
                _leave(placing, why + (f" ({'; '.join(warnings)})" if warnings else ""))
                self.hooks.release(avid, job_id, False, why)
                return
            meta = dict(fields)
            if avid.edition:
                meta["edition"] = avid.edition
            self._place_and_finish(avid, placing, plan.mode, str(plan.root), meta)
        except OSError as e:
            _leave(placing, f"not imported: {e}")
            self.hooks.release(avid, job_id, False, f"import failed: {e}")
            log.warning("not imported: %s", e)
            return
        except Exception as e:
            # One title's bug must not stop the others (nor keep its claim); its journal
            # entry, if written, lets the next run finish it.
            log.exception("internal error while importing")
            _leave(placing, f"not imported: internal error: {e}")
            self.hooks.release(avid, job_id, False, f"internal error: {e}")
            return
        self.hooks.release(avid, job_id, True, f"{avid.code} imported ({plan.mode})")
        log.info("imported %d file(s) (%s)", len(placing), plan.mode)

    def _no_room(self, items: list[Item], mode: str) -> str:
        """Why copying ``items`` would break the free-space guard ("" when it would not).
        Only copies take space: a hardlink, an in-place import or a move on the library's
        device take none."""
        if self.space is None:
            return ""
        need = sum(_size(i.source) for i in items if _copies(i.source, mode, self.store.root))
        reading = self.space.read(need) if need else None
        if reading is None or not reading.low:
            return ""
        return f"not imported: {reading.message} (download.min_free_gb); free some space and import again"

    def _place_and_finish(self, avid: Avid, items: list[Item], mode: str, root: str,
                          meta: dict[str, Any] | None = None, kept: list[str] | None = None) -> None:
        """Journal, place, artwork and NFO, records; ``meta`` (the catalogue's fields) is
        written with the first record (each metadata write costs two fsyncs). ``kept``: the
        journal's list of the user's own files beside an in-place video (a resumed title)."""
        files = [{"source": str(i.source), "target": str(i.target), "part": i.part} for i in items]
        entry = {"avid": avid.full, "mode": mode, "root": root, "files": files, "at": time.time(),
                 "meta": meta or {}}
        if mode == "in-place":
            # Taken before anything is written beside the video, and journalled: a resumed
            # run must not mistake the NFO this run wrote for one the user had.
            entry["beside_kept"] = kept if kept is not None else self._existing_beside(items)
        atomic_write(self._entry(avid), json.dumps(entry).encode())
        record = {k: v for k, v in entry.items() if k != "meta"}
        self.store.update_meta(avid, **(meta or {}), **{"import": {"state": "placing", **record}})
        for i in items:
            if mode != "in-place":
                place(i.source, i.target, mode, on_chunk=lambda: self.hooks.touch(avid))
        videos = [{"file": i.target.name if mode != "in-place" else str(i.target), "part": i.part,
                   "bytes": _size(i.target)} for i in items]
        warnings = self.hooks.finish(avid)
        if mode == "in-place":
            warnings += self._beside(avid, items, entry["beside_kept"])
        done = {"state": "done", **record, "warnings": warnings,
                "files": [str(i.target) for i in items], "sources": [str(i.source) for i in items]}
        self.store.update_meta(avid, video=_video_record(videos), **{"import": done})
        self._entry(avid).unlink(missing_ok=True)
        fsync_path(self.journal)

    @staticmethod
    def _beside_paths(items: list[Item]) -> dict[str, Path]:
        """Library file suffix → the name it takes next to an in-place video (``{stem}.nfo``)."""
        first = min(items, key=lambda i: i.part or 0).target
        return {suffix: first.with_name(first.stem + beside) for suffix, beside in _BESIDE.items()}

    def _existing_beside(self, items: list[Item]) -> list[str]:
        return [str(p) for p in self._beside_paths(items).values() if p.exists() or p.is_symlink()]

    def _beside(self, avid: Avid, items: list[Item], kept: list[str]) -> list[str]:
        """The NFO and artwork next to an in-place video, named after it; a file of that name
        the user had before the import (a media server's own NFO) is kept, never overwritten.
        The warnings naming the kept ones."""
        warnings = []
        for suffix, dst in self._beside_paths(items).items():
            src = self.store.file(avid, suffix)
            if not src.is_file():
                continue
            if str(dst) in kept:
                warnings.append(f"kept your own {dst.name} beside the video; nassav's is in {src.parent}")
            else:
                atomic_write(dst, src.read_bytes(), mode=self.store.file_mode)
        return warnings


def _video_record(videos: list[dict[str, Any]]) -> dict[str, Any]:
    rec: dict[str, Any] = {"file": videos[0]["file"], "bytes": sum(v["bytes"] for v in videos),
                           "completed_at": time.time(), "imported": True}
    if len(videos) > 1 or videos[0]["part"]:
        rec["parts"] = sorted(videos, key=lambda v: v["part"] or 0)
    return rec


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _copies(source: Path, mode: str, library: Path) -> bool:
    """Does placing ``source`` copy its bytes (``copy``, or a ``move`` across devices)?"""
    if mode != "move":
        return mode == "copy"
    while not library.exists() and library != library.parent:  # the data dir may not exist yet
        library = library.parent
    try:
        return source.stat().st_dev != library.stat().st_dev
    except OSError:
        return True


def _leave(items: list[Item], reason: str) -> None:
    for i in items:
        i.action, i.reason = SKIPPED, reason


def place(source: Path, target: Path, mode: str, *, on_chunk: Callable[[], None] | None = None) -> None:
    """Put ``source`` at ``target`` without ever overwriting or half-writing it.

    A ``target`` that already holds ``source`` (an earlier, interrupted run: the same file, a
    copy of it, or for a move the identical copy a cross-device move linked before it was
    killed) is left as it is; any other existing target raises :class:`FileExistsError`. ``hardlink`` across devices
    raises an ``OSError`` saying to use copy or move."""
    make_dirs(target.parent)
    if target.exists() or target.is_symlink():
        if same_content(source, target, mode) or (mode == "move" and not source.exists()):
            if mode == "move" and source.exists() and os.path.samefile(source, target):
                source.unlink()  # a move interrupted between its link and its unlink
            return
        if mode == "move" and _identical(source, target):
            # A move across file systems killed after linking its copy into place and before
            # unlinking the original (only a journal replay gets here: a plan reports it).
            source.unlink()
            fsync_path(source.parent)
            return
        raise FileExistsError(errno.EEXIST, "the library already holds a different file", str(target))
    if not source.exists() and mode == "move":
        raise FileNotFoundError(errno.ENOENT, "the file to import is gone", str(source))
    if mode == "hardlink":
        try:
            os.link(source, target)
        except OSError as e:
            if e.errno == errno.EXDEV:
                raise OSError(errno.EXDEV, "hardlinks cannot cross devices; use --mode copy or move",
                              str(source)) from None
            raise
        fsync_path(target.parent)
        return
    if mode == "move":
        try:
            # link + unlink rather than rename: link fails when the target appeared meanwhile,
            # where rename would silently replace it.
            os.link(source, target)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise
        else:
            fsync_path(target.parent)
            source.unlink()
            fsync_path(source.parent)
            return
    _copy(source, target, on_chunk or (lambda: None))
    if mode == "move":
        source.unlink()
        fsync_path(source.parent)


def _identical(a: Path, b: Path) -> bool:
    """Same size and the same bytes (read through: only a rare replay pays for it)."""
    try:
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _copy(source: Path, target: Path, on_chunk: Callable[[], None]) -> None:
    """Copy to a hidden temp file beside ``target``, fsync, then link it into place."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a run killed mid-copy
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                dst.write(chunk)
                on_chunk()
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(source, tmp)
        os.link(tmp, target)  # fails rather than replace a file that appeared meanwhile
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(target.parent)
