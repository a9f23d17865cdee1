"""Job records and every job transition: submit, finish and cancel, each one Lua script.

A job is a Redis hash ``nassav:job:{id}``; live jobs are in the sorted set
``nassav:jobs:active`` (score = submit time). ``submit`` takes the AVID's claim, creates the
job and appends the ``queued`` event in one Lua call, so there is never a claim without a
job or a job without its event. ``finish`` does the reverse in one call too, and ``cancel``
ends a job no worker has touched yet with the same tail.

The logic of each operation is written once, as a generator that yields Redis calls and is
sent their replies (``_submit``, ``_cancel``, …), which are ``str`` (the product's clients
decode, ``pipeline/redis_client.py``). Two thin fronts carry the calls out:
:class:`Jobs` on a sync client (workers, sweep, CLI, tests) and :class:`AsyncJobs` on a
``redis.asyncio`` client (the gateway), whose methods return awaitables.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Generator, Mapping

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from pipeline import blocklist, events as ev, redis_wire
from pipeline.claims import claim_key
from pipeline.lua import RELEASE_IF_HELD_FN

JOB_PREFIX = "nassav:job:"
ACTIVE = "nassav:jobs:active"
FINISHED_TTL_S = 7 * 24 * 3600

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
TERMINAL = (COMPLETED, FAILED, CANCELLED)

# Every script's KEYS: the AVID's claim, the job hash, the active set, the event stream.

# The job hash and the event are built here rather than passed in: a duplicate submit (the
# claim already held) then costs the client almost nothing. Field names match events.encode.
# ARGV: job_id, avid, kind, now, maxlen, event data, the AVID's blocklist field (its code),
# then extra job field pairs (these go on the record before any worker can see the job).
# KEYS[5] is the blocklist (pipeline/blocklist.py): a blocked AVID is refused before the claim.
# The reply is one string, the outcome's digit then its value ('0' + the holder's job id, '1' +
# the event id, '2' + the blocklist entry): a flat reply is parsed ~15 µs faster than a
# two-element array by the pure-Python RESP3 parser, and a duplicate is mostly parsing.
SUBMIT_SCRIPT = """
local blocked = redis.call('HGET', KEYS[5], ARGV[7])
if blocked then return '2' .. blocked end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return '0' .. (redis.call('GET', KEYS[1]) or '')
end
local jf = {'job_id', ARGV[1], 'avid', ARGV[2], 'kind', ARGV[3], 'status', 'queued',
            'stage', 'queued', 'created_at', ARGV[4], 'updated_at', ARGV[4], 'message', '',
            'percent', '0'}
for i = 8, #ARGV do jf[#jf + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(jf))
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'type', 'queued',
                      'avid', ARGV[2], 'job_id', ARGV[1], 'stage', 'queued', 'ts', ARGV[4],
                      'data', ARGV[6])
return '1' .. id
"""

# The tail every ending shares. ARGV: job_id, ttl_s, maxlen, n, n job field pairs, then the
# final event's field pairs. Returns the event's stream id.
_FINISH_FN = RELEASE_IF_HELD_FN + """
local function finish()
  local n = tonumber(ARGV[4])
  local jf = {}
  for i = 5, 4 + 2 * n do jf[#jf + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(jf))
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  release_if_held(KEYS[1], ARGV[1])
  local ef = {}
  for i = 5 + 2 * n, #ARGV do ef[#ef + 1] = ARGV[i] end
  return redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', unpack(ef))
end
"""

FINISH_SCRIPT = _FINISH_FN + "return finish()\n"

# Mark the job cancelled; a job no worker has touched yet is finished here and then (its
# claim released, its final event appended), since no actor will do it. Same ARGV as finish.
# Returns {0, ''} no such job, {1, status} flagged for its worker, {2, event id} cancelled
# here, {3, status} already ended.
CANCEL_SCRIPT = _FINISH_FN + """
local status = redis.call('HGET', KEYS[2], 'status')
if not status then return {0, ''} end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return {3, status} end
redis.call('HSET', KEYS[2], 'cancel', '1')
if status ~= 'queued' then return {1, status} end
return {2, finish()}
"""

# Job fields the ``queued`` event repeats, so the history can say what was asked (and who asked:
# a subscription's id, an import's id).
ASKED_FIELDS = ("retry_of", "start_stage", "refresh", "source_pref", "subscription", "import_id",
                "edition")  # edition: the one a user asked for (``ABC-123-C``), see actors/stages.py

SCRIPTS = {"submit": SUBMIT_SCRIPT, "finish": FINISH_SCRIPT, "cancel": CANCEL_SCRIPT}


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    job_id: str  # the new job's id, or the job that holds the claim
    event_id: str = ""


# What a cancel did: the job was gone, flagged for its worker, cancelled at once, or had ended.
GONE, CANCELLING, CANCELLED_NOW, ENDED = "gone", "cancelling", "cancelled", "ended"
_CANCEL_OUTCOMES = {0: GONE, 1: CANCELLING, 2: CANCELLED_NOW, 3: ENDED}


@dataclass(frozen=True)
class CancelResult:
    outcome: str  # GONE, CANCELLING, CANCELLED_NOW or ENDED
    job_id: str
    detail: str = ""  # the job's status (CANCELLING, ENDED) or the final event's id


def new_job_id() -> str:
    return uuid.uuid4().hex


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def _flat(m: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in m.items():
        out += [k, "" if v is None else str(v)]
    return out


@functools.lru_cache(maxsize=64)
def _queued_data(kind: str) -> str:
    return json.dumps({"status": QUEUED, "kind": kind}, separators=(",", ":"))


# The AVID's code again, remembered: every submit (a duplicate too) needs it and parsing is
# a few µs of a duplicate's budget; the cache is bounded, a miss just parses.
_claim_field = functools.lru_cache(maxsize=4096)(blocklist.claim_field)


def _submit_args(avid: str, job_id: str, kind: str, *, stream: str, maxlen: int,
                 fields: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    now = time.time()
    asked = {k: str(v) for k, v in fields.items() if k in ASKED_FIELDS and v} if fields else None
    data = (json.dumps({"status": QUEUED, "kind": kind, **asked}, separators=(",", ":")) if asked
            else _queued_data(kind))
    keys = [claim_key(avid), job_key(job_id), ACTIVE, stream, blocklist.KEY]
    return keys, [job_id, avid, kind, f"{now:.6f}", str(maxlen), data, _claim_field(avid),
                  *_flat(fields or {})]


def _parse_submit(raw: str, job_id: str, avid: str) -> SubmitResult:
    won, value = raw[:1], raw[1:]
    if won == "2":
        raise blocklist.AvidBlocked(avid, blocklist.entry_of(avid, value).reason)
    if won == "1":
        return SubmitResult(True, job_id, value)
    return SubmitResult(False, value)


def _finish_args(job_id: str, avid: str, status: str, *, stream: str, maxlen: int,
                 message: str = "", stage: str = "", event_type: str | None = None,
                 data: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the finish tail (``FINISH_SCRIPT``, ``CANCEL_SCRIPT``)."""
    now = time.time()
    job = {"status": status, "message": message, "updated_at": f"{now:.3f}", "finished_at": f"{now:.3f}"}
    if status == COMPLETED:
        job["percent"] = "100"
    etype = event_type or (ev.TASK_COMPLETED if status == COMPLETED else ev.TASK_FAILED)
    body = {"status": status, "message": message}
    body.update(data or {})
    event = ev.encode(etype, avid=avid, job_id=job_id, stage=stage, data=body, ts=now)
    keys = [claim_key(avid), job_key(job_id), ACTIVE, stream]
    return keys, [job_id, str(FINISHED_TTL_S), str(maxlen), str(len(job))] + _flat(job) + _flat(event)


# -- the operations, written once -----------------------------------------------------------
# Each yields what it needs done and is sent the reply: a client command, a batch of them
# (one round trip), or one of SCRIPTS.

@dataclass(frozen=True)
class _Cmd:
    method: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Batch:
    cmds: tuple[_Cmd, ...]


@dataclass(frozen=True)
class _Script:
    name: str
    keys: list[str]
    args: list[str]


_Op = Generator["_Cmd | _Batch | _Script", Any, Any]


def _submit(front: "_Front", avid: str, kind: str, job_id: str | None,
            fields: Mapping[str, Any] | None) -> _Op:
    job_id = job_id or new_job_id()
    keys, args = _submit_args(avid, job_id, kind, stream=front.stream, maxlen=front.maxlen, fields=fields)
    return _parse_submit((yield _Script("submit", keys, args)), job_id, avid)


def _finish(front: "_Front", job_id: str, avid: str, status: str, **how: Any) -> _Op:
    keys, args = _finish_args(job_id, avid, status, stream=front.stream, maxlen=front.maxlen, **how)
    return (yield _Script("finish", keys, args))


def _cancel(front: "_Front", avid: str, message: str) -> _Op:
    job_id = yield _Cmd("get", (claim_key(avid),))
    if not job_id:
        return CancelResult(GONE, "")
    keys, args = _finish_args(job_id, avid, CANCELLED, stream=front.stream, maxlen=front.maxlen,
                              message=message, stage=QUEUED)
    outcome, detail = yield _Script("cancel", keys, args)
    return CancelResult(_CANCEL_OUTCOMES[int(outcome)], job_id, detail)


def _get(job_id: str) -> _Op:
    h = yield _Cmd("hgetall", (job_key(job_id),))
    return h or None


def _update(job_id: str, fields: Mapping[str, Any]) -> _Op:
    mapping = {k: "" if v is None else str(v) for k, v in fields.items()}
    mapping["updated_at"] = f"{time.time():.3f}"
    yield _Cmd("hset", (job_key(job_id),), {"mapping": mapping})


def _is_live(job_id: str) -> _Op:
    # A record without a status (an update that outlived its job) is no live job: its claim
    # may be reaped and its AVID's files deleted.
    status = yield _Cmd("hget", (job_key(job_id), "status"))
    return bool(status) and status not in TERMINAL


def _live_job(avid: str) -> _Op:
    job_id = yield _Cmd("get", (claim_key(avid),))
    if not job_id:
        return None
    return job_id if (yield from _is_live(job_id)) else None


def _active() -> _Op:
    ids = yield _Cmd("zrange", (ACTIVE, 0, -1))
    if not ids:
        return []
    rows = yield _Batch(tuple(_Cmd("hgetall", (job_key(i),)) for i in ids))
    return [h for h in rows if h]


# -- the two fronts -------------------------------------------------------------------------

class _Front:
    """The job operations; a subclass's ``_run`` carries one out on its kind of client."""

    def __init__(self, client: Any, *, stream: str = ev.STREAM, maxlen: int = 100_000):
        self.client, self.stream, self.maxlen = client, stream, maxlen
        self._scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}

    def _run(self, op: _Op) -> Any:
        raise NotImplementedError

    def submit(self, avid: str, kind: str = "download", job_id: str | None = None,
               fields: Mapping[str, Any] | None = None):
        """Take the AVID's claim, create the job with ``fields`` and append ``queued``, atomically.
        Returns a :class:`SubmitResult`; when the claim is held, the holder's job id.

        Raises:
            pipeline.blocklist.AvidBlocked: the AVID is on the blocklist (nothing was written)."""
        return self._run(_submit(self, avid, kind, job_id, fields))

    def finish(self, job_id: str, avid: str, status: str, *, message: str = "", stage: str = "",
               event_type: str | None = None, data: Mapping[str, Any] | None = None):
        """Mark the job terminal, release its claim and append the final event, atomically.
        Returns the event's stream id."""
        return self._run(_finish(self, job_id, avid, status, message=message, stage=stage,
                                 event_type=event_type, data=data))

    def cancel(self, avid: str, message: str = "cancelled before it started"):
        """Cancel the AVID's live job: ended here when still queued, else flagged for its worker.
        Returns a :class:`CancelResult`."""
        return self._run(_cancel(self, avid, message))

    def get(self, job_id: str):
        """The job's record, or None."""
        return self._run(_get(job_id))

    def update(self, job_id: str, **fields: Any):
        return self._run(_update(job_id, fields))

    def is_live(self, job_id: str):
        """True while the job has a status and it is not terminal."""
        return self._run(_is_live(job_id))

    def live_job(self, avid: str):
        """The id of the AVID's live job, or None."""
        return self._run(_live_job(avid))

    def active(self):
        """The records of every live job, oldest first."""
        return self._run(_active())


class Jobs(_Front):
    """Job records on a sync Redis client (workers, sweep, CLI, tests)."""

    def __init__(self, client: redis.Redis, **kw: Any):
        super().__init__(client, **kw)

    def _run(self, op: _Op) -> Any:
        reply = None
        try:
            while True:
                reply = self._do(op.send(reply))
        except StopIteration as done:
            return done.value

    def _do(self, call: "_Cmd | _Batch | _Script") -> Any:
        if isinstance(call, _Script):
            return self._scripts[call.name](keys=call.keys, args=call.args)
        if isinstance(call, _Batch):
            pipe = self.client.pipeline(transaction=False)
            for c in call.cmds:
                getattr(pipe, c.method)(*c.args, **c.kwargs)
            return pipe.execute()
        return getattr(self.client, call.method)(*call.args, **call.kwargs)


class AsyncJobs(_Front):
    """Job records on a ``redis.asyncio`` client (the gateway); every method returns an awaitable."""

    def __init__(self, client: aioredis.Redis, **kw: Any):
        super().__init__(client, **kw)
        # A client on one fixed connection keeps redis-py's own path (its lock guards it).
        self._packed = not getattr(client, "single_connection_client", True)
        if self._packed:
            redis_wire.check_shape(client, "EVALSHA")  # a changed redis-py fails here, loudly

    async def _run(self, op: _Op) -> Any:
        reply = None
        try:
            while True:
                reply = await self._do(op.send(reply))
        except StopIteration as done:
            return done.value

    async def _do(self, call: "_Cmd | _Batch | _Script") -> Any:
        if isinstance(call, _Script):
            return await self._evalsha(call)
        if isinstance(call, _Batch):
            async with self.client.pipeline(transaction=False) as pipe:
                for c in call.cmds:
                    getattr(pipe, c.method)(*c.args, **c.kwargs)
                return await pipe.execute()
        return await getattr(self.client, call.method)(*call.args, **call.kwargs)

    async def _evalsha(self, call: _Script) -> Any:
        # EVALSHA sent straight: redis-py's AsyncScript.__call__ and evalsha() wrappers cost
        # ~15 µs of a duplicate submit's ~150 µs (tools/profile_ingest.py), and its per-argument
        # packing ~20 µs more (pipeline/redis_wire.py). The fallback is theirs: a server that
        # lost its script cache (restart, SCRIPT FLUSH) gets it again.
        script = self._scripts[call.name]
        try:
            return await self._send_evalsha(script.sha, call)
        except NoScriptError:
            script.sha = await self.client.script_load(script.script)
            return await self._send_evalsha(script.sha, call)

    def _send_evalsha(self, sha: str, call: _Script) -> Any:
        if self._packed:
            return redis_wire.call_packed(self.client, redis_wire.pack(
                ("EVALSHA", sha, str(len(call.keys)), *call.keys, *call.args)))
        return self.client.execute_command("EVALSHA", sha, len(call.keys), *call.keys, *call.args)


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
