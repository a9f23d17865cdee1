"""The user's blocklist: AVIDs never to queue again, and sources not to use for one AVID.

Two kinds of entry, both in one Redis hash (``nassav:blocklist``):

* a whole AVID (field ``ABC-123``): the submit script (:data:`pipeline.jobs.SUBMIT_SCRIPT`)
  reads this field in the same Lua call that takes the claim, so no path that queues a job
  (the API, the old client's routes, an importer, a subscription sweep, a retry) can slip
  past it, and there is no window between the check and the claim;
* a source for one AVID (field ``ABC-123 jable``): that site's copy is broken, so resolve
  (and download's re-resolve) does not ask it for this title; its outcome reads
  "blocked by the user".

Entries are keyed by the AVID's code, without an edition suffix: blocking ``ABC-123`` also
refuses ``ABC-123-C``. The value is a small JSON object (``reason``, ``added_at``).

Why Redis and not a file in the data dir: the check must be atomic with taking the claim,
which only a field the submit script can read gives; every process that submits already has
Redis and not always the data dir (a gateway on another machine). The Redis nassav runs keeps
its data (``appendonly yes`` in ``deploy/redis.conf`` and in the embedded Redis, with
``noeviction``), so the list survives restarts like the job records do.

:class:`Blocklist` works on a sync client (workers, CLI, tests), :class:`AsyncBlocklist` on a
``redis.asyncio`` client (the gateway); each operation is written once, as a generator of
Redis calls (the pattern of :mod:`pipeline.jobs`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Generator

from pipeline.avid import parse
from pipeline.errors import InvalidAvid, NassavError
from pipeline.redis_ops import run_async, run_sync

KEY = "nassav:blocklist"
MAX_REASON = 500
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SOURCE_FORM = "a source name: lowercase letters, digits, '-' or '_', at most 40 characters (e.g. jable)"


class AvidBlocked(NassavError):
    """A job for an AVID on the blocklist was refused; says how to lift it."""

    def __init__(self, avid: str, reason: str = ""):
        self.avid, self.reason = avid, reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"{avid} is on the blocklist{why}; remove it with DELETE /api/blocklist/{avid} "
                         f"or `nassav unblock {avid}`")


class InvalidBlockEntry(NassavError, ValueError):
    """A source name or reason the blocklist does not accept."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One blocklist entry: the AVID's code, the source ('' for the whole AVID), why, when."""

    avid: str
    source: str = ""
    reason: str = ""
    added_at: float = 0.0

    def as_item(self) -> dict[str, Any]:
        return asdict(self)


def code_of(avid: str) -> str:
    """The AVID's code (edition dropped); raises :class:`pipeline.errors.InvalidAvid`."""
    return parse(avid).code


def claim_field(avid: str) -> str:
    """The field the submit script checks for ``avid``: its code, or the text as given when it is
    no AVID (job records of other kinds, tests)."""
    try:
        return code_of(avid)
    except InvalidAvid:
        return avid


def field_of(code: str, source: str = "") -> str:
    return f"{code} {source}" if source else code


def check_source(source: object) -> str:
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise InvalidBlockEntry(f"source {source!r} is not {SOURCE_FORM}")
    return source


def check_reason(reason: object) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise InvalidBlockEntry(f"reason must be text of at most {MAX_REASON} characters")
    return " ".join(reason.split())  # one line: it goes into messages and logs


def entry_of(field: str, value: str) -> Entry:
    code, _, source = field.partition(" ")
    try:
        d = json.loads(value)
    except ValueError:
        d = {}
    if not isinstance(d, dict):
        d = {}
    return Entry(code, source, str(d.get("reason") or ""), float(d.get("added_at") or 0))


def _value(reason: str) -> str:
    return json.dumps({"reason": reason, "added_at": round(time.time(), 3)}, separators=(",", ":"))


# -- the operations, written once: each yields (method, args) and is sent the reply -------

_Op = Generator[tuple[str, tuple], Any, Any]


def _get(avid: str) -> _Op:
    code = code_of(avid)
    raw = yield "hget", (KEY, code)
    return entry_of(code, raw) if raw is not None else None


def _sources(avid: str) -> _Op:
    code = code_of(avid)
    fields = yield "hkeys", (KEY,)
    # Fields are "CODE" or "CODE source"; codes never hold a space, so the prefix is exact.
    return {f.partition(" ")[2] for f in fields if f.startswith(code + " ")}


def _add(avid: str, source: str, reason: str) -> _Op:
    code = code_of(avid)
    source = check_source(source) if source else ""
    reason = check_reason(reason)
    value = _value(reason)
    yield "hset", (KEY, field_of(code, source), value)
    return entry_of(field_of(code, source), value)


def _remove(avid: str, source: str) -> _Op:
    code = code_of(avid)
    source = check_source(source) if source else ""
    return bool((yield "hdel", (KEY, field_of(code, source))))


def _list(avid: str | None) -> _Op:
    code = code_of(avid) if avid else None
    raw = yield "hgetall", (KEY,)
    out = [entry_of(f, v) for f, v in raw.items()]
    if code:
        out = [e for e in out if e.avid == code]
    return sorted(out, key=lambda e: (e.avid, e.source))


class _Front:
    def __init__(self, client: Any):
        self.client = client

    def _run(self, op: _Op) -> Any:
        raise NotImplementedError

    def is_blocked(self, avid: str):
        """The AVID's whole-AVID entry, or None."""
        return self._run(_get(avid))

    def blocked_sources(self, avid: str):
        """The names of the sources blocked for this AVID."""
        return self._run(_sources(avid))

    def add_avid(self, avid: str, reason: str = ""):
        """Block the AVID entirely (no job is queued for it again); returns the :class:`Entry`."""
        return self._run(_add(avid, "", reason))

    def add_source(self, avid: str, source: str, reason: str = ""):
        """Block one source for this AVID (resolve will not ask it); returns the :class:`Entry`."""
        return self._run(_add(avid, source, reason))

    def remove_avid(self, avid: str):
        """Lift the whole-AVID entry; True when there was one."""
        return self._run(_remove(avid, ""))

    def remove_source(self, avid: str, source: str):
        """Lift a source entry; True when there was one."""
        return self._run(_remove(avid, source))

    def list(self, avid: str | None = None):
        """Every entry (or one AVID's), sorted by AVID then source."""
        return self._run(_list(avid))


class Blocklist(_Front):
    """The blocklist on a sync Redis client (workers, CLI, tests)."""

    def _run(self, op: _Op) -> Any:
        return run_sync(self.client, op)


class AsyncBlocklist(_Front):
    """The blocklist on a ``redis.asyncio`` client (the gateway); methods return awaitables."""

    def _run(self, op: _Op) -> Any:
        return run_async(self.client, op)
