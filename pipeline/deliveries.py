"""The record of each notification / rescan delivery, in Redis, bounded.

One hash per delivery (``nassav:notify:delivery:{id}``, kept 7 days) and one capped list of
ids, newest first (``nassav:notify:deliveries``). A delivery's id is ``{event id}.{target}``:
creating it is a Lua "if absent" call, so an event handed out twice (a consumer that died
before acknowledging it) makes one delivery, not two.

Fields: ``id``, ``target``, ``kind``, ``event``, ``event_id``, ``avid``, ``status``
(queued → retrying → delivered | failed), ``attempts``, ``http_status`` (the last answer's),
``last_error``, ``created_at``, ``updated_at``, ``payload`` (what is sent, JSON; never shown).
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
FINAL = (DELIVERED, FAILED)
# Not shown by the API: what the target gets is bulky, and the list is for status.
HIDDEN = ("payload",)

# KEYS: the delivery hash, the list. ARGV: ttl, keep, then field pairs. 1 = created.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], string.sub(KEYS[1], #'""" + PREFIX + """' + 1))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
"""


def key(delivery_id: str) -> str:
    return PREFIX + delivery_id


def delivery_id(event_id: str, target: str) -> str:
    return f"{event_id}.{target}"


def decode(h: Mapping[str, str]) -> dict[str, Any]:
    """A delivery hash as the API shows it."""
    out: dict[str, Any] = {k: v for k, v in h.items() if k not in HIDDEN}
    for k in ("attempts", "http_status"):
        out[k] = int(h[k]) if h.get(k) not in (None, "") else None
    for k in ("created_at", "updated_at"):
        out[k] = float(h[k]) if h.get(k) else None
    out["attempts"] = out["attempts"] or 0
    return out


class Deliveries:
    """Delivery records on a sync client (the dispatcher and the notify actor)."""

    def __init__(self, client: redis.Redis, *, keep: int = 500):
        self.client, self.keep = client, keep
        self._create = client.register_script(_CREATE)

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


def decoded(hashes: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
    """The records still there (a trimmed or expired one is skipped), decoded."""
    return [decode(h) for h in hashes if h]
