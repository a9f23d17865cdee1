"""Subscriptions: followed actresses, makers, labels, series, directors and catalogue searches.

A subscription is stored in Redis, beside the other moving parts (AOF keeps it across a
restart): the gateway and every worker, on any machine, read the same truth, and no data
dir needs to be shared by metadata workers. Keys:

    nassav:subs                  hash  id -> the subscription as JSON
    nassav:subs:due              zset  id -> when its next check is due (epoch seconds)
    nassav:sub:{id}:seen         set   every AVID a check has met on the listing
    nassav:sub:{id}:pending      hash  AVID -> the listing item (JSON): seen, not yet queued or
                                       skipped; the next check finishes it first
    nassav:sub:{id}:state        hash  newest (the newest AVID seen), checks (count), last_check,
                                       resume_page (read past seen titles up to this page)
    nassav:sub:{id}:checks       list  the last check records, newest first (JSON)
    nassav:sub:{id}:lock         str   the token of the worker checking it now (with a TTL)

The id is derived from kind and key, so following the same thing twice finds the first one.
Each operation is written once as a generator of Redis calls (as in ``pipeline/jobs.py``)
and run by :class:`Subscriptions` (sync: workers, CLI, tests) or :class:`AsyncSubscriptions`
(the gateway).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Generator, Mapping

import redis
import redis.asyncio as aioredis

from pipeline.errors import NassavError
from pipeline.lua import RELEASE_IF_HELD
from pipeline.redis_ops import run_async, run_sync

KINDS = ("actress", "maker", "label", "series", "director", "search")
ACTIONS = ("metadata", "download")
EDITIONS = ("C", "UC", "U", "regular")
MAX_KEY_LEN = 100
MAX_REGEX_LEN = 200
MAX_GENRES = 50

SUBS = "nassav:subs"
DUE = "nassav:subs:due"
_SUB = "nassav:sub:"
_ID = re.compile(r"^[0-9a-f]{12}$")
_KEY = re.compile(r"^[^\x00-\x1f/\\?#%]+$")
# What a subscription keeps besides its definition (forgotten on unfollow and on a new follow).
_PER_SUB = ("seen", "pending", "state", "checks")
# A pending title whose queueing failed this many times is given up (recorded as skipped).
MAX_ATTEMPTS = 5

# Mark an AVID seen and pending in one step: KEYS[1] the seen set, KEYS[2] the pending hash,
# ARGV[1] the AVID, ARGV[2] the listing item (JSON). 1 for the first caller ever, else 0. Being
# one script, no crash can leave a title seen (so later checks stop at it) yet not pending.
_MARK_SEEN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class SubscriptionInvalid(NassavError, ValueError):
    """A subscription request that cannot be accepted; the message names the accepted form."""

    def __init__(self, field_name: str, expected: str, got: object = None):
        self.field, self.expected = field_name, expected
        shown = "" if got is None else f" (got {str(got)[:60]!r})"
        super().__init__(f"{field_name} must be {expected}{shown}")


def key_of(sub_id: str, what: str) -> str:
    return f"{_SUB}{sub_id}:{what}"


def subscription_id(kind: str, key: str) -> str:
    """The id of following ``key`` as ``kind``: the same thing followed twice has one id."""
    return hashlib.sha1(f"{kind}\0{key.strip().casefold()}".encode()).hexdigest()[:12]


def valid_id(text: object) -> str:
    if not isinstance(text, str) or not _ID.match(text):
        raise SubscriptionInvalid("id", "a subscription id: 12 hexadecimal digits (see GET /api/subscriptions)",
                                  text)
    return text


@dataclass(frozen=True)
class Filters:
    """What a found title must satisfy to be queued (every filter is optional)."""

    since: str = ""  # released on or after this day (YYYY-MM-DD)
    skip_genres: tuple[str, ...] = ()  # a title with any of these genres is skipped
    editions: tuple[str, ...] = ()  # queue only titles the listing shows in one of these
    title_regex: str = ""  # the title must match (search, case-insensitive)

    def refusal(self, *, title: str, release_date: str, editions: frozenset[str]) -> str:
        """Why a listed title is not queued ("" when it passes); genres are checked apart."""
        if self.since and release_date and release_date < self.since:
            return f"released {release_date}, before {self.since}"
        if self.since and not release_date:
            return "no release date on the listing"
        if self.editions and not editions & set(self.editions):
            return f"editions {', '.join(sorted(editions))}, none of {', '.join(self.editions)}"
        if self.title_regex and not re.search(self.title_regex, title, re.I):
            return "title does not match"
        return ""

    def skipped_genre(self, genres: list[str]) -> str:
        hit = [g for g in genres if g in self.skip_genres]
        return f"genre {hit[0]}" if hit else ""


@dataclass(frozen=True)
class Subscription:
    id: str
    kind: str
    key: str  # the catalogue's id of the actress / maker / …, or the search query
    action: str = "metadata"
    filters: Filters = field(default_factory=Filters)
    backfill: int | None = None  # None: the config's subscriptions.backfill
    interval_s: float | None = None  # None: the config's subscriptions.interval_s
    name: str = ""
    created_at: float = 0.0

    @property
    def label(self) -> str:
        """What to call it in a message: its name, else kind and key ("actress okq")."""
        return self.name or f"{self.kind} {self.key}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["id_or_query"] = d["key"]
        d["filters"]["skip_genres"] = list(self.filters.skip_genres)
        d["filters"]["editions"] = list(self.filters.editions)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Subscription":
        f = d.get("filters") or {}
        return cls(id=d["id"], kind=d["kind"], key=d["key"], action=d.get("action", "metadata"),
                   filters=Filters(since=f.get("since", ""), skip_genres=tuple(f.get("skip_genres") or ()),
                                   editions=tuple(f.get("editions") or ()),
                                   title_regex=f.get("title_regex", "")),
                   backfill=d.get("backfill"), interval_s=d.get("interval_s"), name=d.get("name", ""),
                   created_at=float(d.get("created_at") or 0))


def parse_request(body: Mapping[str, Any], *, now: float | None = None) -> Subscription:
    """A :class:`Subscription` from ``{kind, id_or_query, filters?, action?, backfill?,
    interval_s?, name?}`` (the API's and the CLI's form).

    Raises:
        SubscriptionInvalid: the first field that is wrong, naming what it accepts.
    """
    if not isinstance(body, Mapping):
        raise SubscriptionInvalid("body", "a JSON object {kind, id_or_query, filters, action}")
    known = {"kind", "id_or_query", "filters", "action", "backfill", "interval_s", "name"}
    extra = sorted(set(body) - known)
    if extra:
        raise SubscriptionInvalid(extra[0], f"absent: accepted fields are {', '.join(sorted(known))}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise SubscriptionInvalid("kind", f"one of {', '.join(KINDS)}", kind)
    key = body.get("id_or_query")
    # Only dots would climb out of the listing path ("/star/..").
    if not isinstance(key, str) or not key.strip(" .") or len(key.strip()) > MAX_KEY_LEN \
            or not _KEY.match(key.strip()):
        raise SubscriptionInvalid("id_or_query", f"the catalogue's id of the {kind} (as in its listing URL, "
                                  f"e.g. /star/okq) or a search query: 1 to {MAX_KEY_LEN} characters, "
                                  "no / \\ ? # % or control characters", key)
    action = body.get("action", "metadata")
    if action not in ACTIONS:
        raise SubscriptionInvalid("action", "metadata (add to the library without video) or download", action)
    backfill = body.get("backfill")
    if backfill is not None and (isinstance(backfill, bool) or not isinstance(backfill, int)
                                 or not 0 <= backfill <= 10_000):
        raise SubscriptionInvalid("backfill", "an integer from 0 to 10000 (titles the first check may queue)",
                                  backfill)
    interval = body.get("interval_s")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                 or not 60 <= interval <= 30 * 86400):
        raise SubscriptionInvalid("interval_s", "seconds from 60 to 2592000 (30 days)", interval)
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise SubscriptionInvalid("name", "a label of at most 200 characters", name)
    return Subscription(id=subscription_id(kind, key), kind=kind, key=key.strip(), action=action,
                        filters=parse_filters(body.get("filters")), backfill=backfill,
                        interval_s=float(interval) if interval is not None else None, name=name.strip(),
                        created_at=time.time() if now is None else now)


def parse_filters(raw: Any) -> Filters:
    if raw is None:
        return Filters()
    if not isinstance(raw, Mapping):
        raise SubscriptionInvalid("filters", "an object {since, skip_genres, editions, title_regex}", raw)
    extra = sorted(set(raw) - {"since", "skip_genres", "editions", "title_regex"})
    if extra:
        raise SubscriptionInvalid(f"filters.{extra[0]}", "absent: accepted filters are since, skip_genres, "
                                  "editions, title_regex")
    since = raw.get("since") or ""
    if since:
        if not isinstance(since, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
            _bad_date(since)
        try:
            dt.date.fromisoformat(since)
        except ValueError:
            _bad_date(since)
    genres = raw.get("skip_genres") or []
    if not isinstance(genres, list) or len(genres) > MAX_GENRES or \
            not all(isinstance(g, str) and 0 < len(g.strip()) <= 50 for g in genres):
        raise SubscriptionInvalid("filters.skip_genres", f"a list of at most {MAX_GENRES} genre names", genres)
    editions = raw.get("editions") or []
    upper = {e.upper(): e for e in EDITIONS}
    if not isinstance(editions, list) or not all(isinstance(e, str) and e.upper() in upper for e in editions):
        raise SubscriptionInvalid("filters.editions", f"a list of editions out of {', '.join(EDITIONS)}", editions)
    editions = [upper[e.upper()] for e in editions]
    regex = raw.get("title_regex") or ""
    if not isinstance(regex, str) or len(regex) > MAX_REGEX_LEN:
        raise SubscriptionInvalid("filters.title_regex", f"a regular expression of at most {MAX_REGEX_LEN} "
                                  "characters", regex)
    if regex:
        try:
            re.compile(regex)
        except re.error as e:
            raise SubscriptionInvalid("filters.title_regex", f"a valid regular expression ({e})", regex) from None
    return Filters(since=since, skip_genres=tuple(g.strip() for g in genres),
                   editions=tuple(dict.fromkeys(editions)), title_regex=regex)


def _bad_date(value: Any) -> str:
    raise SubscriptionInvalid("filters.since", "a date YYYY-MM-DD (released on or after it)", value)


def next_due(now: float, interval_s: float, jitter: float, rng: random.Random | None = None) -> float:
    """When the next check is due: ``interval_s`` from ``now``, moved by up to ±``jitter`` of it."""
    spread = interval_s * jitter
    return now + interval_s + (rng or random).uniform(-spread, spread)


# -- the operations, written once ------------------------------------------------------------
# Each yields ("method", args, kwargs) for one client call, or a list of them for one
# round trip, and is sent the reply.

_Op = Generator[Any, Any, Any]


def _add(sub: Subscription, due_at: float) -> _Op:
    created = yield ("hsetnx", (SUBS, sub.id, json.dumps(sub.to_json())), {})
    if not created:
        return False
    # Followed again after an unfollow: a check that was running then may have left its seen
    # set behind, which would make this new subscription's first check stop at once.
    yield [("delete", tuple(key_of(sub.id, w) for w in _PER_SUB), {}),
           ("zadd", (DUE, {sub.id: due_at}), {})]
    return True


def _get(sub_id: str) -> _Op:
    raw = yield ("hget", (SUBS, sub_id), {})
    return Subscription.from_json(json.loads(raw)) if raw else None


def _all() -> _Op:
    raw = yield ("hgetall", (SUBS,), {})
    subs = [Subscription.from_json(json.loads(v)) for v in (raw or {}).values()]
    return sorted(subs, key=lambda s: s.created_at)


def _status(sub_id: str, checks: int) -> _Op:
    state, recent, due, seen, pending = yield [("hgetall", (key_of(sub_id, "state"),), {}),
                                               ("lrange", (key_of(sub_id, "checks"), 0, checks - 1), {}),
                                               ("zscore", (DUE, sub_id), {}),
                                               ("scard", (key_of(sub_id, "seen"),), {}),
                                               ("hlen", (key_of(sub_id, "pending"),), {})]
    return {"newest": (state or {}).get("newest", ""), "checks_done": int((state or {}).get("checks") or 0),
            "last_check": float((state or {}).get("last_check") or 0), "next_due": float(due or 0),
            "seen": int(seen or 0), "pending": int(pending or 0), "checks": [json.loads(c) for c in recent or []]}


def _remove(sub_id: str) -> _Op:
    removed = yield ("hdel", (SUBS, sub_id), {})
    yield [("zrem", (DUE, sub_id), {}),
           ("delete", tuple(key_of(sub_id, w) for w in _PER_SUB), {})]
    return bool(removed)


def _check_now(sub_id: str, now: float) -> _Op:
    exists = yield ("hexists", (SUBS, sub_id), {})
    if not exists:
        return False
    yield ("zadd", (DUE, {sub_id: now}), {})
    return True


class AsyncSubscriptions:
    """The gateway's side: add, list, show, remove, and ask for a check now."""

    def __init__(self, client: aioredis.Redis):
        self.client = client

    async def add(self, sub: Subscription, *, due_at: float | None = None) -> bool:
        """Store ``sub``, due at once (or at ``due_at``); False when its id is followed already."""
        return await run_async(self.client, _add(sub, time.time() if due_at is None else due_at))

    async def get(self, sub_id: str) -> Subscription | None:
        return await run_async(self.client, _get(sub_id))

    async def all(self) -> list[Subscription]:
        return await run_async(self.client, _all())

    async def status(self, sub_id: str, checks: int = 20) -> dict[str, Any]:
        return await run_async(self.client, _status(sub_id, checks))

    async def remove(self, sub_id: str) -> bool:
        return await run_async(self.client, _remove(sub_id))

    async def check_now(self, sub_id: str) -> bool:
        return await run_async(self.client, _check_now(sub_id, time.time()))


class Subscriptions:
    """Subscriptions on a sync client: everything the gateway does, plus what a check needs."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._release = client.register_script(RELEASE_IF_HELD)
        self._mark = client.register_script(_MARK_SEEN)

    def add(self, sub: Subscription, *, due_at: float | None = None) -> bool:
        return run_sync(self.client, _add(sub, time.time() if due_at is None else due_at))

    def get(self, sub_id: str) -> Subscription | None:
        return run_sync(self.client, _get(sub_id))

    def all(self) -> list[Subscription]:
        return run_sync(self.client, _all())

    def status(self, sub_id: str, checks: int = 20) -> dict[str, Any]:
        return run_sync(self.client, _status(sub_id, checks))

    def remove(self, sub_id: str) -> bool:
        return run_sync(self.client, _remove(sub_id))

    def check_now(self, sub_id: str) -> bool:
        return run_sync(self.client, _check_now(sub_id, time.time()))

    # -- what a check uses ------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 100) -> list[str]:
        """Ids whose next check is due, most overdue first."""
        return self.client.zrangebyscore(DUE, "-inf", time.time() if now is None else now, start=0, num=limit)

    def lock(self, sub_id: str, ttl_ms: int) -> str | None:
        """Take the subscription's lock for ``ttl_ms``; its token, or None when another holds it."""
        token = uuid.uuid4().hex
        return token if self.client.set(key_of(sub_id, "lock"), token, nx=True, px=ttl_ms) else None

    def unlock(self, sub_id: str, token: str) -> bool:
        return bool(self._release(keys=[key_of(sub_id, "lock")], args=[token]))

    def is_due(self, sub_id: str, now: float | None = None) -> bool:
        score = self.client.zscore(DUE, sub_id)
        return score is not None and score <= (time.time() if now is None else now)

    def reschedule(self, sub_id: str, due_at: float) -> None:
        """Set the next check, unless the subscription was removed meanwhile."""
        self.client.zadd(DUE, {sub_id: due_at}, xx=True)

    def mark_seen(self, sub_id: str, avid: str, item: Mapping[str, Any] | None = None) -> bool:
        """Remember ``avid`` for this subscription, and hold it *pending* (with ``item``, what
        the listing said of it) until :meth:`settle`; True only for the first caller ever —
        the gate that makes a found title queued once, whoever races."""
        entry = json.dumps({**(item or {}), "attempts": 0}, separators=(",", ":"))
        return bool(self._mark(keys=[key_of(sub_id, "seen"), key_of(sub_id, "pending")], args=[avid, entry]))

    def settle(self, sub_id: str, avid: str) -> None:
        """``avid`` is queued, or skipped on purpose (the check record says why): no longer pending."""
        self.client.hdel(key_of(sub_id, "pending"), avid)

    def pending(self, sub_id: str) -> dict[str, dict[str, Any]]:
        """The titles seen but not yet queued or skipped (a check was stopped, or queueing failed)."""
        raw = self.client.hgetall(key_of(sub_id, "pending")) or {}
        return {avid: json.loads(v) for avid, v in raw.items()}

    def retry_later(self, sub_id: str, avid: str, entry: Mapping[str, Any]) -> int:
        """Queueing ``avid`` failed: keep it pending, one attempt more; returns the attempts so far.
        (Only a title still pending is kept: one unfollowed or settled meanwhile stays gone.)"""
        attempts = int(entry.get("attempts") or 0) + 1
        key = key_of(sub_id, "pending")
        if self.client.hexists(key, avid):
            self.client.hset(key, avid, json.dumps({**entry, "attempts": attempts}, separators=(",", ":")))
        return attempts

    def progress(self, sub_id: str, resume_page: int) -> None:
        """A check is reading up to page ``resume_page - 1``: should it be stopped there, the next
        check reads past seen titles up to ``resume_page`` (the rest of the page was never seen).
        :meth:`record` sets the real value when the check ends."""
        self.client.hset(key_of(sub_id, "state"), "resume_page", str(resume_page))

    def checks_done(self, sub_id: str) -> int:
        return int(self.client.hget(key_of(sub_id, "state"), "checks") or 0)

    def resume_page(self, sub_id: str) -> int:
        """The page the last check failed on (0: it did not fail)."""
        return int(self.client.hget(key_of(sub_id, "state"), "resume_page") or 0)

    def record(self, sub_id: str, record: Mapping[str, Any], *, newest: str, keep: int,
               resume_page: int = 0) -> None:
        """Append a check record (keep the last ``keep``) and count the check."""
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(key_of(sub_id, "checks"), json.dumps(record, separators=(",", ":")))
        pipe.ltrim(key_of(sub_id, "checks"), 0, keep - 1)
        state = {"last_check": f"{record.get('ts', time.time()):.3f}", "resume_page": str(resume_page)}
        if newest:
            state["newest"] = newest
        pipe.hset(key_of(sub_id, "state"), mapping=state)
        pipe.hincrby(key_of(sub_id, "state"), "checks", 1)
        pipe.execute()
