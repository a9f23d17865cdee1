"""The library index: a SQLite projection of the resource directory, owned by the gateway.

The resource directory stays the truth. A row is only ever (re)built from one AVID's folder
(:meth:`LibraryIndex.sync`), so applying the same event twice, or in a different order, gives
the same row; :meth:`LibraryIndex.rebuild` does it for every folder. The user's own state
(watched, favourite) lives in the row and in the metadata JSON's ``user`` block, so a rebuild
from disk keeps it. Workers never open this file.

Connections: one writer guarded by a lock, and a small pool of readers (WAL lets them run
side by side). Every call is blocking: the gateway runs them in its thread pool. What a row
holds (the schema, a row from a folder, a row as an API item) is in ``gateway/index_rows.py``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from gateway import attempts as attempt_rows, history_stages
from gateway.index_rows import COLUMNS, SCHEMA, SCHEMA_VERSION, USER_COLUMNS, item_from_row, row_from_meta
from pipeline.avid import Avid, parse
from pipeline.errors import InvalidAvid
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.index")

FILENAME = "library.sqlite3"

SORT_KEYS = {
    "avid": "r.avid",
    "metadata_create_time": "r.metadata_create_time",
    "metadata_update_time": "r.metadata_update_time",
    "video_create_time": "r.video_create_time",
    "source": "r.source",
    "release_date": "r.release_date",
}
STATUSES = ("all", "downloaded", "pending")

@dataclass
class Query:
    """A resource list request, already validated."""

    search: str = ""
    status: str = "all"
    watched: bool | None = None
    is_favorite: bool | None = None
    source: str = ""
    actor: str = ""
    genre: str = ""
    sort_by: str = "metadata_create_time"
    order: str = "desc"
    page: int = 1
    page_size: int = 20
    avids: list[str] = field(default_factory=list)
    edition: str | None = None  # an edition code ("" = regular); None = any


def _is_id(v: str) -> bool:
    return v.isascii() and v.isdigit() and len(v) <= 18


def _group_order(count_col: str, name_col: str, sort_by: str, order: str) -> str:
    """ORDER BY for actors and genres: by count (default descending) or name (default ascending),
    names breaking ties among counts."""
    if sort_by == "name":
        return f"{name_col} {'DESC' if order == 'desc' else 'ASC'}"
    return f"{count_col} {'ASC' if order == 'asc' else 'DESC'}, {name_col}"


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class IndexNotReady(Exception):
    """A reader opened the index before its keeper made (or upgraded) it; try again shortly."""


class LibraryIndex:
    """The SQLite file in the data dir; ``created`` tells whether it was missing at open.

    ``keeper=False`` (a gateway process that does not keep the index, see
    ``gateway/index_keeper.py``) never creates, drops or upgrades the schema: it raises
    :class:`IndexNotReady` until the keeper has made the file at the current schema."""

    def __init__(self, data_dir: Path | str, *, store: ResourceStore | None = None, keeper: bool = True):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / FILENAME
        self.store = store or ResourceStore(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        self._lock = threading.Lock()
        self._since_optimize = 0
        self._idle: list[sqlite3.Connection] = []  # list.pop/append are atomic: no lock needed
        self._readers: list[sqlite3.Connection] = []
        if not keeper:
            if self.created:
                raise IndexNotReady(f"{self.path} does not exist yet")
            self._w = self._connect()
            if self._schema() != str(SCHEMA_VERSION):
                self._w.close()
                raise IndexNotReady(f"{self.path} is not at schema {SCHEMA_VERSION} yet")
            return
        self._w = self._connect()
        with self._lock:
            self._w.execute("PRAGMA journal_mode=WAL")
            if not self.created and self._schema() != str(SCHEMA_VERSION):
                # A projection from an older layout: drop it, the folders rebuild it.
                self._drop()
                self.created = True
            self._w.executescript(SCHEMA + attempt_rows.SCHEMA + history_stages.SCHEMA)
            self._w.execute("INSERT OR IGNORE INTO kv VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self._w.commit()

    def _schema(self) -> str | None:
        try:
            r = self._w.execute("SELECT value FROM kv WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError:
            return None
        return r[0] if r else None

    def _drop(self) -> None:
        names = [r[0] for r in self._w.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'resources_fts_%'")]
        for n in names:
            self._w.execute(f'DROP TABLE IF EXISTS "{n}"')

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        c.row_factory = sqlite3.Row
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=10000")
        return c

    def _q(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        """Run a read on a pooled connection. A few connections, reused most-recent first,
        keep their page caches warm (one per pool thread left ~40 mostly cold ones)."""
        try:
            c = self._idle.pop()
        except IndexError:
            c = self._connect()
            c.execute("PRAGMA mmap_size=268435456")
            with self._lock:
                self._readers.append(c)
        try:
            return c.execute(sql, args).fetchall()
        finally:
            self._idle.append(c)

    def _one(self, sql: str, args: Any = ()) -> sqlite3.Row | None:
        rows = self._q(sql, args)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            for c in self._readers:
                c.close()
            self._readers.clear()
            try:
                self._w.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self._w.close()

    # -- writing -------------------------------------------------------------------------

    def sync(self, avids: Iterable[Avid | str]) -> dict[str, str]:
        """Bring each AVID's row in line with its folder: ``{avid: "upserted"|"removed"|"absent"}``."""
        rows: list[tuple[str, dict[str, Any] | None]] = []
        for a in avids:
            try:
                avid = a if isinstance(a, Avid) else parse(a)
            except InvalidAvid:
                continue
            try:
                rows.append((avid.code, row_from_meta(avid, self.store.read_meta(avid), self.store)))
            except (OSError, ValueError, TypeError) as e:
                # One odd folder must not stall the projection; its row stays as it was.
                log.warning("index: cannot read %s: %s", avid.code, e)
        out: dict[str, str] = {}
        with self._lock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                for code, row in rows:
                    if row is None:
                        gone = self._delete(code)
                        out[code] = "removed" if gone else "absent"
                    else:
                        self._upsert(row)
                        out[code] = "upserted"
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            self._since_optimize += len(rows)
            if self._since_optimize >= 1000:  # an index grown from events needs statistics too
                self._since_optimize = 0
                self._w.execute("PRAGMA optimize")
        return out

    def rebuild(self) -> int:
        """Re-read every folder in the data dir and drop rows whose folder is gone."""
        on_disk = list(self.store.avids())
        names = {a.code for a in on_disk}
        for i in range(0, len(on_disk), 500):
            self.sync(on_disk[i:i + 500])
        with self._lock:
            known = [r[0] for r in self._w.execute("SELECT avid FROM resources")]
            stale = [a for a in known if a not in names]
            self._w.execute("BEGIN IMMEDIATE")
            for a in stale:
                self._delete(a)
            self._w.execute("INSERT OR REPLACE INTO kv VALUES ('rebuilt_at', ?)", (str(time.time()),))
            self._w.execute("COMMIT")
            # Statistics let the planner prefer a sort index over a half-the-table filter
            # (without them, status=downloaded sorted 5,000 rows per page: 26 ms instead of 2).
            self._w.execute("ANALYZE")
        return self.count()

    def _upsert(self, row: Mapping[str, Any]) -> None:
        cols = COLUMNS + USER_COLUMNS
        sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "avid")
        self._w.execute(
            f"INSERT INTO resources ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(avid) DO UPDATE SET {sets}", [row[c] for c in cols])
        avid = row["avid"]
        w = self._w
        rowid = w.execute("SELECT rowid FROM resources WHERE avid = ?", (avid,)).fetchone()[0]
        w.execute("DELETE FROM resources_fts WHERE rowid = ?", (rowid,))
        w.execute("INSERT INTO resources_fts (rowid, search) VALUES (?, ?)", (rowid, row["search"]))
        w.execute("DELETE FROM resource_genres WHERE avid = ?", (avid,))
        w.execute("DELETE FROM resource_actors WHERE avid = ?", (avid,))
        for g in dict.fromkeys(json.loads(row["genres"])):
            w.execute("INSERT INTO resource_genres VALUES (?, ?)", (avid, self._name_id("genres", g)))
        for a in json.loads(row["actors"]):
            actor_id = self._name_id("actors", a["name"])
            if a["avatar_url"]:
                w.execute("UPDATE actors SET avatar_url = ? WHERE id = ? AND avatar_url != ?",
                          (a["avatar_url"], actor_id, a["avatar_url"]))
            w.execute("INSERT OR IGNORE INTO resource_actors VALUES (?, ?)", (avid, actor_id))

    def _name_id(self, table: str, name: str) -> int:
        r = self._w.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()
        if r:
            return r[0]
        return self._w.execute(f"INSERT INTO {table} (name) VALUES (?)", (name,)).lastrowid

    def _delete(self, avid: str) -> bool:
        r = self._w.execute("SELECT rowid FROM resources WHERE avid = ?", (avid,)).fetchone()
        if r is None:
            return False
        self._w.execute("DELETE FROM resources_fts WHERE rowid = ?", (r[0],))
        self._w.execute("DELETE FROM resources WHERE avid = ?", (avid,))
        self._w.execute("DELETE FROM resource_genres WHERE avid = ?", (avid,))
        self._w.execute("DELETE FROM resource_actors WHERE avid = ?", (avid,))
        return True

    def remove(self, avid: str) -> bool:
        """Drop the AVID's row (its folder is gone); True when there was one."""
        with self._lock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                gone = self._delete(avid)
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            return gone

    def record_attempts(self, patches: Mapping[str, attempt_rows.Attempt]) -> None:
        """Merge a batch's attempts (:func:`gateway.attempts.fold`, by job id) into the table."""
        ids = list(patches)
        with self._lock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                known: dict[str, attempt_rows.Attempt] = {}
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    for r in self._w.execute(f"SELECT * FROM attempts WHERE job_id IN "
                                             f"({', '.join('?' * len(chunk))})", chunk):
                        known[r["job_id"]] = attempt_rows.from_row(r)
                self._w.executemany(attempt_rows.REPLACE, [
                    attempt_rows.as_row(attempt_rows.merge(known.get(j), a)) for j, a in patches.items()])
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise

    def record_stages(self, rows: Iterable[history_stages.StageRow]) -> None:
        """Merge a batch's stage rows (:mod:`gateway.history_stages`) into their table."""
        with self._lock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                self._w.executemany(history_stages.UPSERT, [r.as_row() for r in rows])
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise

    def set_user_state(self, avid: str, *, watched: bool | None = None,
                       is_favorite: bool | None = None) -> dict[str, Any] | None:
        """Change watched/favourite on an indexed AVID; None when it is not indexed."""
        now = time.time()
        with self._lock:
            sets, args = ["user_updated_at = ?"], [now]
            if watched is not None:
                sets.append("watched = ?")
                args.append(int(watched))
            if is_favorite is not None:
                sets.append("is_favorite = ?")
                args.append(int(is_favorite))
            cur = self._w.execute(f"UPDATE resources SET {', '.join(sets)} WHERE avid = ?", [*args, avid])
            if cur.rowcount == 0:
                return None
        return self.user_state(avid)

    def user_state(self, avid: str) -> dict[str, Any] | None:
        r = self._one("SELECT watched, is_favorite, user_updated_at FROM resources WHERE avid = ?", (avid,))
        if r is None:
            return None
        return {"watched": bool(r["watched"]), "is_favorite": bool(r["is_favorite"]),
                "updated_at": r["user_updated_at"]}

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return self._q("SELECT COUNT(*) FROM resources")[0][0]

    def counts(self) -> dict[str, int]:
        """Resources by status: ``{"downloaded": n, "pending": m}``."""
        total, videos = self._one("SELECT COUNT(*), COALESCE(SUM(has_video), 0) FROM resources")
        return {"downloaded": int(videos), "pending": int(total - videos)}

    def get(self, avid: str) -> dict[str, Any] | None:
        r = self._one("SELECT * FROM resources WHERE avid = ?", (avid,))
        return item_from_row(r) if r else None

    def list(self, q: Query) -> tuple[list[dict[str, Any]], int]:
        """One page of items for ``q`` and the total that matched."""
        where, args = [], []
        if q.status == "downloaded":
            where.append("r.has_video = 1")
        elif q.status == "pending":
            where.append("r.has_video = 0")
        if q.watched is not None:
            where.append("r.watched = ?")
            args.append(int(q.watched))
        if q.is_favorite is not None:
            where.append("r.is_favorite = ?")
            args.append(int(q.is_favorite))
        if q.source:
            where.append("r.source = ?")
            args.append(q.source)
        if q.edition is not None:
            where.append("r.edition = ?")
            args.append(q.edition)
        if q.actor:
            col = "a.id" if _is_id(q.actor) else "a.name"
            where.append(f"r.avid IN (SELECT ra.avid FROM resource_actors ra JOIN actors a "
                         f"ON a.id = ra.actor_id WHERE {col} = ?)")
            args.append(int(q.actor) if _is_id(q.actor) else q.actor)
        if q.genre:
            col = "g.id" if _is_id(q.genre) else "g.name"
            where.append(f"r.avid IN (SELECT rg.avid FROM resource_genres rg JOIN genres g "
                         f"ON g.id = rg.genre_id WHERE {col} = ?)")
            args.append(int(q.genre) if _is_id(q.genre) else q.genre)
        # Control characters cannot be in the indexed text, and a NUL ends an FTS5 query string.
        text = "".join(ch if ch.isprintable() else " " for ch in q.search)
        terms = text.lower().split()[:8]
        long_terms = [t for t in terms if len(t) >= 3]
        if long_terms:
            # Every word must appear somewhere: one trigram-index lookup for all of them.
            where.append("r.rowid IN (SELECT rowid FROM resources_fts WHERE resources_fts MATCH ?)")
            args.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
        for t in terms:
            if len(t) < 3:  # too short for trigrams: a scan, but rare
                where.append("r.search LIKE ? ESCAPE '\\'")
                args.append(_like(t))
        if q.avids:
            where.append(f"r.avid IN ({', '.join('?' * len(q.avids))})")
            args += q.avids
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        direction = "DESC" if q.order == "desc" else "ASC"
        col = SORT_KEYS[q.sort_by]
        # Only video_create_time can be NULL (no video yet): those go last either way (in
        # descending order NULLs come last by themselves).
        nulls = f"({col} IS NULL), " if q.sort_by == "video_create_time" and direction == "ASC" else ""
        order = f" ORDER BY {nulls}{col} {direction}, r.avid {direction}"
        # Two cheap queries rather than one window count: the page is read off a sort index,
        # and the count off the filter's index (or the few rows a search matched).
        total = self._q(f"SELECT COUNT(*) FROM resources r{clause}", args)[0][0]
        rows = self._q(f"SELECT r.* FROM resources r{clause}{order} LIMIT ? OFFSET ?",
                       [*args, q.page_size, (q.page - 1) * q.page_size])
        return [item_from_row(r) for r in rows], total

    def attempts(self, avid: str, *, page: int = 1, page_size: int = 20) -> tuple[list[dict[str, Any]], int]:
        """One page of the AVID's attempts, newest first, and how many there are."""
        total = self._q("SELECT COUNT(*) FROM attempts WHERE avid = ?", (avid,))[0][0]
        rows = self._q("SELECT * FROM attempts WHERE avid = ? ORDER BY started_at DESC, job_id DESC "
                       "LIMIT ? OFFSET ?", (avid, page_size, (page - 1) * page_size))
        return [attempt_rows.from_row(r).as_item() for r in rows], total

    def history(self, avid: str, *, page: int = 1, page_size: int = 20) -> tuple[list[dict[str, Any]], int]:
        """One page of the AVID's attempts, newest first, each with its ``stages`` in order."""
        items, total = self.attempts(avid, page=page, page_size=page_size)
        ids = [i["job_id"] for i in items]
        by_job: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for r in self._q(f"SELECT * FROM history_stages WHERE job_id IN ({', '.join('?' * len(ids))}) "
                             "ORDER BY COALESCE(started_at, ended_at), stage", ids):
                by_job[r["job_id"]].append(history_stages.item_from_row(r))
        for i in items:
            i["stages"] = by_job[i["job_id"]]
        return items, total

    def actors(self, *, search: str = "", page: int = 1, page_size: int = 50,
               sort_by: str = "count", order: str = "") -> tuple[list[dict[str, Any]], int]:
        """A page of actors with their resource counts; ``sort_by`` count or name, ``order``
        asc or desc (default: most resources first, names A to Z)."""
        where, args = "", []
        if search:
            where, args = " WHERE a.name LIKE ? ESCAPE '\\'", [_like(search)]
        order = _group_order("n.resource_count", "a.name", sort_by, order)
        total = self._q(f"SELECT COUNT(*) FROM actors a{where} AND EXISTS (SELECT 1 FROM resource_actors "
                        f"ra WHERE ra.actor_id = a.id)" if where else
                        "SELECT COUNT(DISTINCT actor_id) FROM resource_actors", args)[0][0]
        rows = self._q(f"SELECT a.id, a.name, a.avatar_url, n.resource_count FROM (SELECT actor_id, COUNT(*) "
                       f"AS resource_count FROM resource_actors GROUP BY actor_id) n JOIN actors a ON a.id = "
                       f"n.actor_id{where} ORDER BY {order} LIMIT ? OFFSET ?",
                       [*args, page_size, (page - 1) * page_size])
        return [dict(r) for r in rows], total

    def actor(self, actor_id: int) -> dict[str, Any] | None:
        if not 0 < actor_id < 2 ** 63:
            return None
        r = self._one("SELECT id, name, avatar_url FROM actors WHERE id = ?", (actor_id,))
        if r is None:
            return None
        out = dict(r)
        out["avids"] = [x[0] for x in self._q(
            "SELECT avid FROM resource_actors WHERE actor_id = ? ORDER BY avid", (actor_id,))]
        return out

    def genres(self, *, search: str = "", page: int = 1, page_size: int = 100, sort_by: str = "count",
               order: str = "") -> tuple[list[dict[str, Any]], int]:
        """A page of genres with their resource counts (ordered as :meth:`actors`)."""
        where, args = "", []
        if search:
            where, args = " WHERE g.name LIKE ? ESCAPE '\\'", [_like(search)]
        rows = self._q(f"SELECT g.id, g.name, n.resource_count FROM (SELECT genre_id, COUNT(*) AS resource_count "
                       f"FROM resource_genres GROUP BY genre_id) n JOIN genres g ON g.id = n.genre_id{where} "
                       f"ORDER BY {_group_order('n.resource_count', 'g.name', sort_by, order)}", args)
        total = len(rows)
        start = (page - 1) * page_size
        return [dict(r) for r in rows[start:start + page_size]], total

    def genre(self, genre_id: int) -> dict[str, Any] | None:
        """``{id, name, resource_count}`` of one genre; None when there is no such id."""
        if not 0 < genre_id < 2 ** 63:
            return None
        r = self._one("SELECT g.id, g.name, (SELECT COUNT(*) FROM resource_genres rg WHERE rg.genre_id = g.id) "
                      "AS resource_count FROM genres g WHERE g.id = ?", (genre_id,))
        return dict(r) if r else None

    def sources(self) -> list[str]:
        return [r[0] for r in self._q("SELECT DISTINCT source FROM resources WHERE source != '' ORDER BY source")]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every row, for comparing two indexes (tests, diagnostics)."""
        rows = self._q("SELECT * FROM resources ORDER BY avid")
        return [dict(r) for r in rows]
