"""Job records: what the queue dashboard and ``queue_status`` show, and the atomic submit.

A job is a Redis hash ``nassav:job:{id}``; live jobs are in the sorted set
``nassav:jobs:active`` (score = submit time). ``submit`` takes the AVID's claim, creates the
job and appends the ``queued`` event in one Lua call, so there is never a claim without a
job or a job without its event. ``finish`` does the reverse in one call too.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

import redis

from pipeline import events as ev
from pipeline.claims import claim_key

JOB_PREFIX = "nassav:job:"
ACTIVE = "nassav:jobs:active"
FINISHED_TTL_S = 7 * 24 * 3600

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
TERMINAL = (COMPLETED, FAILED, CANCELLED)

# The job hash and the event are built here rather than passed in: a duplicate submit (the
# claim already held) then costs the client almost nothing. Field names match events.encode.
SUBMIT_SCRIPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
redis.call('HSET', KEYS[2], 'job_id', ARGV[1], 'avid', ARGV[2], 'kind', ARGV[3],
           'status', 'queued', 'stage', 'queued', 'created_at', ARGV[4], 'updated_at', ARGV[4],
           'message', '', 'percent', '0')
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'type', 'queued',
                      'avid', ARGV[2], 'job_id', ARGV[1], 'stage', 'queued', 'ts', ARGV[4],
                      'data', ARGV[6])
return {1, id}
"""

FINISH_SCRIPT = """
local n = tonumber(ARGV[4])
local jf = {}
for i = 5, 4 + 2 * n do jf[#jf + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(jf))
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local ef = {}
for i = 5 + 2 * n, #ARGV do ef[#ef + 1] = ARGV[i] end
return redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', unpack(ef))
"""


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    job_id: str  # the new job's id, or the job that holds the claim
    event_id: str = ""


def new_job_id() -> str:
    return uuid.uuid4().hex


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def _flat(m: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in m.items():
        out += [k, "" if v is None else str(v)]
    return out


def decode_hash(h: Mapping[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in h.items()}


def submit_args(avid: str, job_id: str, kind: str, *, stream: str, maxlen: int,
                now: float | None = None) -> tuple[list[str], list[str]]:
    now = time.time() if now is None else now
    data = json.dumps({"status": QUEUED, "kind": kind}, separators=(",", ":"))
    keys = [claim_key(avid), job_key(job_id), ACTIVE, stream]
    return keys, [job_id, avid, kind, f"{now:.6f}", str(maxlen), data]


def parse_submit(raw: Any, job_id: str) -> SubmitResult:
    won, value = raw[0], raw[1]
    value = value.decode() if isinstance(value, bytes) else value
    if int(won) == 1:
        return SubmitResult(True, job_id, value)
    return SubmitResult(False, value or "")


class Jobs:
    """Job records on a sync Redis client (workers, CLI, tests)."""

    def __init__(self, client: redis.Redis, *, stream: str = ev.STREAM, maxlen: int = 100_000):
        self.client, self.stream, self.maxlen = client, stream, maxlen
        self._submit = client.register_script(SUBMIT_SCRIPT)
        self._finish = client.register_script(FINISH_SCRIPT)

    def submit(self, avid: str, kind: str = "download", job_id: str | None = None) -> SubmitResult:
        job_id = job_id or new_job_id()
        keys, args = submit_args(avid, job_id, kind, stream=self.stream, maxlen=self.maxlen)
        return parse_submit(self._submit(keys=keys, args=args), job_id)

    def get(self, job_id: str) -> dict[str, str] | None:
        h = self.client.hgetall(job_key(job_id))
        return decode_hash(h) if h else None

    def update(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = f"{time.time():.3f}"
        self.client.hset(job_key(job_id), mapping={k: "" if v is None else str(v) for k, v in fields.items()})

    def finish(self, job_id: str, avid: str, status: str, *, message: str = "", stage: str = "",
               event_type: str | None = None, data: Mapping[str, Any] | None = None) -> str:
        """Mark the job terminal, release its claim and append the final event, atomically."""
        now = time.time()
        job = {"status": status, "message": message, "updated_at": f"{now:.3f}", "finished_at": f"{now:.3f}"}
        if status == COMPLETED:
            job["percent"] = "100"
        etype = event_type or (ev.TASK_COMPLETED if status == COMPLETED else ev.TASK_FAILED)
        body = {"status": status, "message": message}
        body.update(data or {})
        event = ev.encode(etype, avid=avid, job_id=job_id, stage=stage, data=body, ts=now)
        keys = [claim_key(avid), job_key(job_id), ACTIVE, self.stream]
        args = [job_id, str(FINISHED_TTL_S), str(self.maxlen), str(len(job))] + _flat(job) + _flat(event)
        raw = self._finish(keys=keys, args=args)
        return raw.decode() if isinstance(raw, bytes) else raw

    def is_live(self, job_id: str) -> bool:
        job = self.get(job_id)
        return bool(job) and job.get("status") not in TERMINAL

    def active(self) -> list[dict[str, str]]:
        ids = [i.decode() if isinstance(i, bytes) else i for i in self.client.zrange(ACTIVE, 0, -1)]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(job_key(i))
        return [decode_hash(h) for h in pipe.execute() if h]


def queue_status(jobs: list[dict[str, str]]) -> dict[str, Any]:
    """The old client's ``queue_status`` shape from a list of live job records."""
    def item(j: Mapping[str, str]) -> dict[str, Any]:
        return {"task_id": j.get("job_id"), "avid": j.get("avid"), "status": j.get("status"),
                "stage": j.get("stage"), "kind": j.get("kind"),
                "progress": float(j.get("percent") or 0), "speed": j.get("speed", ""),
                "eta": j.get("eta", ""), "message": j.get("message", ""),
                "created_at": float(j.get("created_at") or 0)}
    active = [item(j) for j in jobs if j.get("status") == RUNNING]
    pending = [item(j) for j in jobs if j.get("status") == QUEUED]
    return {"active_tasks": active, "pending_tasks": pending, "active_count": len(active),
            "pending_count": len(pending), "total_count": len(active) + len(pending)}
