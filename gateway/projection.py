"""Feeds the library index from the event stream, and keeps the counters ``/metrics`` shows.

A Redis consumer group (``nassav-index``) on ``nassav:events``: at-least-once delivery, an
entry is acknowledged only after the index has absorbed it. Absorbing is idempotent (the row
is rebuilt from the AVID's folder, not patched from the event), so a redelivery is harmless.
The counters are bumped in the same Lua call as the XACK and only when the XACK acknowledged
something, so a redelivered event is never counted twice. Entries a dead gateway left pending
are taken over after ``claim_idle_ms``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from starlette.concurrency import run_in_threadpool

from gateway import attempts, history_stages
from gateway.index import LibraryIndex
from gateway.tasks import Backoff, cancel_and_wait
from pipeline import events as ev
from pipeline.events import Event, parse_entries

log = logging.getLogger("nassav.index")

GROUP = "nassav-index"
METRICS_KEY = "nassav:metrics"
SPEED_KEY = "nassav:metrics:speed"
# Events after which an AVID's folder may have changed; progress and warnings never change it.
SYNC_TYPES = (ev.STAGE_FINISHED, ev.TASK_COMPLETED, ev.TASK_FAILED, "resource_deleted", "video_deleted")

_ACK = """
local n = 0
local i = 2
while i <= #ARGV do
  local id, k = ARGV[i], tonumber(ARGV[i + 1])
  local acked = redis.call('XACK', KEYS[1], ARGV[1], id)
  for j = 0, k - 1 do
    if acked == 1 then
      redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i + 2 + 2 * j], ARGV[i + 3 + 2 * j])
    end
  end
  n = n + acked
  i = i + 2 + 2 * k
end
return n
"""


def counters(e: Event) -> list[tuple[str, float]]:
    """What one event adds to the ``/metrics`` counters."""
    if e.type == ev.QUEUED:
        return [(f"jobs_submitted:{e.data.get('kind') or 'download'}", 1)]
    if e.type == ev.TASK_COMPLETED:
        return [("jobs_finished:completed", 1)]
    if e.type == ev.TASK_FAILED:
        return [(f"jobs_finished:{e.data.get('status') or 'failed'}", 1)]
    if e.type == ev.STAGE_FINISHED and e.stage == "download" and not e.data.get("reused"):
        try:
            return [("download_bytes", float(e.data.get("bytes") or 0)), ("downloads_completed", 1)]
        except (TypeError, ValueError):
            return []
    return []


class Projection:
    def __init__(self, client: aioredis.Redis, index: LibraryIndex, *, stream: str = ev.STREAM,
                 group: str = GROUP, consumer: str | None = None, claim_idle_ms: int = 60_000,
                 linger_s: float = 0.02):
        self.client, self.index, self.stream, self.group = client, index, stream, group
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        # After a batch, wait this long before reading again so that under load the next read
        # takes many events at once: each batch costs the same few Redis trips and a thread
        # trip whatever its size (at ~1,200 submits/s, batches of one cost ~0.3 ms a submit).
        # An idle projection still wakes at the first event; the index lags by at most this.
        self.linger_s = linger_s
        # Whether this consumer may have entries read but not acknowledged (at start, or after
        # a failed read/apply): only then is the pending list ("0") read, one trip per batch saved.
        self._maybe_pending = True
        self._ack = client.register_script(_ACK)
        self.attempts = attempts.Recorder()
        self._task: asyncio.Task | None = None
        self.group_created = False
        self.applied = 0
        self.ready = asyncio.Event()

    async def ensure_group(self) -> bool:
        """Create the group at the stream's end; True when it did not exist (events were missed)."""
        try:
            await self.client.xgroup_create(self.stream, self.group, id="$", mkstream=True)
            return True
        except ResponseError as e:
            if "BUSYGROUP" in str(e):
                return False
            raise

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="index-projection")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self.attempts.waiting:  # submissions still held back (see gateway/attempts.py)
            try:
                await self.write([], self.attempts.take())
            except Exception as e:  # noqa: BLE001 - shutting down: say so, lose only their start times
                log.warning("index: attempts not written at shutdown: %s", e)

    async def write(self, avids: list[str], tried: dict[str, attempts.Attempt],
                    stages: list[history_stages.StageRow] | None = None) -> None:
        """Sync the AVIDs' rows and write the attempts and stage rows, in one trip to a thread
        (a trip costs about 0.1 ms of CPU); attempts a failed write took are held again for the
        next (stage rows come again with their unacknowledged events)."""
        def work() -> None:
            if avids:
                self.index.sync(avids)
            if tried:
                self.index.record_attempts(tried)
            if stages:
                self.index.record_stages(stages)
        try:
            await run_in_threadpool(work)
        except BaseException:
            self.attempts.hold(tried)
            raise

    async def _run(self) -> None:
        retry = Backoff(log)
        while True:
            try:
                self.group_created = await self.ensure_group()
                if self.group_created or self.index.created:
                    # Events were missed (new group) or the file is new: the disk is the truth.
                    n = await run_in_threadpool(self.index.rebuild)
                    log.info("library index rebuilt from disk: %d resources", n)
                    self.index.created = False
                break
            except (RedisError, OSError) as e:
                await retry.wait("index: redis unavailable (%s); retrying", e)
        self.ready.set()
        last_claim = 0.0
        while True:
            try:
                if time.monotonic() - last_claim > self.claim_idle_ms / 2000:
                    last_claim = time.monotonic()
                    await self._take_over()
                # Held attempts wait at most ~delay_s, even when no event comes.
                if await self.drain(block_ms=250 if self.attempts.waiting else 1000) and self.linger_s:
                    await asyncio.sleep(self.linger_s)
                if self.attempts.due():
                    await self.write([], self.attempts.take())
                retry.reset()
            except ResponseError as e:
                if "NOGROUP" in str(e):  # the stream or the group was deleted under us
                    self.group_created = await self.ensure_group()
                    if self.group_created:
                        await run_in_threadpool(self.index.rebuild)
                    continue
                await retry.wait("index projection: %s", e)
            except Exception as e:  # asyncio.CancelledError is no Exception: stop() still stops it
                await retry.wait("index projection: %s; retrying", e)

    async def _take_over(self) -> None:
        """Claim entries another consumer of the group read but never acknowledged."""
        res = await self.client.xautoclaim(self.stream, self.group, self.consumer,
                                           min_idle_time=self.claim_idle_ms, start_id="0-0", count=500)
        rows = res[1] if res and len(res) > 1 else []
        rows = [r for r in rows if r and r[1]]
        if rows:
            try:
                await self.apply(parse_entries(rows))
            except BaseException:
                self._maybe_pending = True  # claimed to us and not acknowledged
                raise

    async def drain(self, block_ms: int | None = None) -> int:
        """Apply this consumer's pending entries, then new ones; returns how many were applied."""
        total = 0
        for start in ("0", ">"):
            if start == "0" and not self._maybe_pending:
                continue
            try:
                total += await self._read(start, block_ms)
            except BaseException:
                self._maybe_pending = True  # what was read may not have been acknowledged
                raise
            if start == "0":
                self._maybe_pending = False
        return total

    async def _read(self, start: str, block_ms: int | None) -> int:
        total = 0
        while True:
            res = await self.client.xreadgroup(self.group, self.consumer, {self.stream: start},
                                               count=500, block=block_ms if start == ">" else None)
            got = [r for _, entries in res or [] for r in entries]
            if not got:
                break
            # A pending entry the stream has trimmed since comes back empty: just ack it.
            dead = [r[0] for r in got if not r[1]]
            if dead:
                await self.client.xack(self.stream, self.group, *dead)
            rows = [r for r in got if r[1]]
            if rows:
                await self.apply(parse_entries(rows))
            total += len(rows)
            if start == ">" and len(got) < 500:
                break
        return total

    async def apply(self, events: list[Event]) -> None:
        """Sync the touched AVIDs, record the jobs' attempts, note download speeds, then
        acknowledge with the counters."""
        avids = list(dict.fromkeys(e.avid for e in events if e.type in SYNC_TYPES and e.avid))
        stages = history_stages.rows(events)
        tried = self.attempts.add(events, writing=bool(avids or stages))
        if avids or tried or stages:
            await self.write(avids, tried, stages)
        speeds = {e.job_id: f"{e.data.get('speed_bytes_per_s') or 0}|{e.ts}"
                  for e in events if e.type == ev.PROGRESS and e.job_id}
        done = [e.job_id for e in events if e.type in (ev.TASK_COMPLETED, ev.TASK_FAILED) and e.job_id]
        if speeds or done:
            async with self.client.pipeline(transaction=False) as p:
                if speeds:
                    p.hset(SPEED_KEY, mapping=speeds)
                if done:
                    p.hdel(SPEED_KEY, *done)
                await p.execute()
        args: list[Any] = [self.group]
        for e in events:
            inc = counters(e)
            args += [e.id, len(inc)]
            for k, v in inc:
                args += [k, v]
        await self._ack(keys=[self.stream, METRICS_KEY], args=args)
        self.applied += len(events)
