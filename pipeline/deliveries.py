"""The record of each notification / rescan delivery, in Redis, bounded.

One hash per delivery (``nassav:notify:delivery:{id}``, kept 7 days) and one capped list of
ids, newest first (``nassav:notify:deliveries``). A delivery's id is ``{event id}.{target}``:
creating it is a Lua "if absent" call, so an event handed out twice (a consumer that died
before acknowledging it) makes one delivery, not two.

Fields: ``id``, ``target``, ``kind``, ``event``, ``event_id``, ``avid``, ``status``
(queued → retrying → delivered | failed | lost), ``attempts``, ``http_status`` (the last
answer's), ``last_error``, ``created_at``, ``updated_at``, ``payload`` (what is sent, JSON;
never shown), ``claim`` (``{attempt}:{origin}`` of the message sending it: see :meth:`begin`),
``recovered`` (when :func:`pipeline.notify_recover.recover` sent it again, once at most).
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping

import redis

PREFIX = "nassav:notify:delivery:"
LIST = "nassav:notify:deliveries"
TTL_S = 7 * 24 * 3600
QUEUED, RETRYING, DELIVERED, FAILED = "queued", "retrying", "delivered", "failed"
# Stuck queued/retrying even after its one re-send (pipeline/notify_recover.py): no worker
# will send it; last_error says why.
LOST = "lost"
FINAL = (DELIVERED, FAILED, LOST)
WAITING = (QUEUED, RETRYING)
# Not shown by the API: what the target gets is bulky, and the list is for status.
HIDDEN = ("payload", "claim")

# KEYS: the delivery hash, the list. ARGV: ttl, keep, then field pairs. 1 = created.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], string.sub(KEYS[1], #'""" + PREFIX + """' + 1))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
"""


# KEYS: the delivery hash. ARGV: attempt, origin, now. 1 = this message may send.
# A message may send attempt n unless the record is final, n is already done, or another
# message holds n or a later attempt. The same message (same attempt and origin: dramatiq
# handing a dead worker's message out again) may take it again; the original and a
# recovery re-send of one attempt (different origins) never both send.
_BEGIN = """
local h = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'claim')
local st = h[1]
if not st or (st ~= '""" + QUEUED + """' and st ~= '""" + RETRYING + """') then return 0 end
local n = tonumber(ARGV[1])
if n <= (tonumber(h[2]) or 0) then return 0 end
if h[3] and h[3] ~= '' then
  local ha, ho = string.match(h[3], '^(%d+):(.*)$')
  ha = tonumber(ha) or 0
  if n < ha or (n == ha and ho ~= ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'claim', ARGV[1] .. ':' .. ARGV[2], 'updated_at', ARGV[3])
return 1
"""

# KEYS: the delivery hash. ARGV: now, stale_after_s, may_lose (1/0), the lost reason.
# Returns the attempt to send again (> 0), -1 when it was marked lost, 0 when nothing to do.
_RECOVER = """
local h = redis.call('HMGET', KEYS[1], 'status', 'updated_at', 'recovered', 'attempts', 'claim')
if h[1] ~= '""" + QUEUED + """' and h[1] ~= '""" + RETRYING + """' then return 0 end
local now = tonumber(ARGV[1])
if now - (tonumber(h[2]) or 0) < tonumber(ARGV[2]) then return 0 end
if h[3] and h[3] ~= '' then
  if ARGV[3] ~= '1' then return 0 end
  redis.call('HSET', KEYS[1], 'status', '""" + LOST + """', 'last_error', ARGV[4], 'updated_at', ARGV[1])
  return -1
end
local held = 0
if h[5] and h[5] ~= '' then held = tonumber(string.match(h[5], '^(%d+):')) or 0 end
redis.call('HSET', KEYS[1], 'recovered', ARGV[1], 'updated_at', ARGV[1])
return math.max(tonumber(h[4]) or 0, held) + 1
"""
RECOVERED_ORIGIN = "recovered"


def key(delivery_id: str) -> str:
    return PREFIX + delivery_id


def delivery_id(event_id: str, target: str) -> str:
    return f"{event_id}.{target}"


def decode(h: Mapping[str, str]) -> dict[str, Any]:
    """A delivery hash as the API shows it."""
    out: dict[str, Any] = {k: v for k, v in h.items() if k not in HIDDEN}
    for k in ("attempts", "http_status"):
        out[k] = int(h[k]) if h.get(k) not in (None, "") else None
    for k in ("created_at", "updated_at", "recovered"):
        out[k] = float(h[k]) if h.get(k) else None
    out["attempts"] = out["attempts"] or 0
    return out


class Deliveries:
    """Delivery records on a sync client (the dispatcher and the notify actor)."""

    def __init__(self, client: redis.Redis, *, keep: int = 500):
        self.client, self.keep = client, keep
        self._create = client.register_script(_CREATE)
        self._begin = client.register_script(_BEGIN)
        self._recover = client.register_script(_RECOVER)

    def create(self, delivery_id: str, *, target: str, kind: str, event: str, event_id: str, avid: str,
               payload: Mapping[str, Any]) -> bool:
        """Record a new delivery (status queued); False when it exists already."""
        now = f"{time.time():.3f}"
        fields = {"id": delivery_id, "target": target, "kind": kind, "event": event, "event_id": event_id,
                  "avid": avid, "status": QUEUED, "attempts": "0", "http_status": "", "last_error": "",
                  "created_at": now, "updated_at": now,
                  "payload": json.dumps(dict(payload), separators=(",", ":"), default=str)}
        flat = [x for kv in fields.items() for x in kv]
        return bool(self._create(keys=[key(delivery_id), LIST], args=[TTL_S, self.keep, *flat]))

    def get(self, delivery_id: str) -> dict[str, str] | None:
        """The raw record (payload included), or None."""
        return self.client.hgetall(key(delivery_id)) or None

    def attempted(self, delivery_id: str, *, attempts: int, status: str, http_status: int | None = None,
                  error: str = "") -> None:
        """Note one attempt's outcome; only an existing record is updated."""
        fields = {"attempts": str(attempts), "status": status, "updated_at": f"{time.time():.3f}",
                  "http_status": "" if http_status is None else str(http_status), "last_error": error[:500]}
        if self.client.exists(key(delivery_id)):
            self.client.hset(key(delivery_id), mapping=fields)


    def begin(self, delivery_id: str, attempt: int, origin: str = "") -> bool:
        """Claim attempt ``attempt`` for the message from ``origin``; False: send nothing
        (final, already done, or another message holds this attempt or a later one)."""
        return bool(self._begin(keys=[key(delivery_id)], args=[attempt, origin, f"{time.time():.3f}"]))

    def recover(self, delivery_id: str, *, now: float, stale_after_s: float, may_lose: bool,
                reason: str) -> int:
        """For a record left queued/retrying longer than ``stale_after_s``: the attempt to send
        again (its first stall), -1 when marked lost with ``reason`` (a stall after that re-send,
        and ``may_lose``), else 0. Atomic: two workers never both re-send one record."""
        return int(self._recover(keys=[key(delivery_id)],
                                 args=[f"{now:.3f}", stale_after_s, "1" if may_lose else "0", reason[:500]]))

    def waiting_ids(self) -> list[str]:
        """Ids of the listed records still queued or retrying (oldest first)."""
        ids = self.client.lrange(LIST, 0, self.keep - 1)
        with self.client.pipeline(transaction=False) as p:
            for i in ids:
                p.hget(key(i), "status")
            statuses = p.execute()
        return [i for i, s in reversed(list(zip(ids, statuses))) if s in WAITING]


def decoded(hashes: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
    """The records still there (a trimmed or expired one is skipped), decoded."""
    return [decode(h) for h in hashes if h]
