"""The periodic sweep: repairs what crashes and restarts leave behind. No cron needed.

Every worker process runs it on a timer; a Redis lock lets one of them do it per period.
One pass:
- reaps claims whose job is gone or finished (a claim must never outlive its job);
- re-queues live jobs that have no Dramatiq message anywhere (queued, in flight or delayed)
  and have not moved for a grace period — e.g. a gateway that died between the claim and
  the send, or a Redis restart that lost the last second of the queue;
- probes sources whose back-off has run out, so health recovers without waiting for a job;
- reports orphans in the data dir (folders with no metadata, part dirs with no live job) and
  removes stale temp files of atomic writes that a crash interrupted.
The last report is kept in Redis (``nassav:sweep:last``, read by :func:`last_report`); a pass
that changed something or found orphans is also logged. ``/health`` does not show it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import redis

from pipeline.broker import pending_job_ids
from pipeline.claims import Claims
from pipeline.jobs import QUEUED, RUNNING, Jobs
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.sweep")

LOCK_KEY = "nassav:sweep:lock"
LAST_KEY = "nassav:sweep:last"
TEMP_MAX_AGE_S = 3600


@dataclass
class SweepReport:
    ts: float
    claims_reaped: list[str] = field(default_factory=list)
    jobs_requeued: list[str] = field(default_factory=list)
    sources_probed: dict[str, str] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)
    temp_files_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.claims_reaped or self.jobs_requeued or self.temp_files_removed)


class Sweeper:
    """One sweep pass over Redis and the data dir; the callables keep it free of Dramatiq."""

    def __init__(self, client: redis.Redis, store: ResourceStore, *,
                 requeue: Callable[[str, str, str], None],
                 probe: Callable[[], dict[str, str]] | None = None,
                 grace_s: float = 120.0):
        self.client, self.store = client, store
        self.jobs, self.claims = Jobs(client), Claims(client)
        self.requeue, self.probe, self.grace_s = requeue, probe, grace_s

    def try_run(self, period_s: float) -> SweepReport | None:
        """Run unless another process swept within ``period_s``."""
        if not self.client.set(LOCK_KEY, "1", nx=True, px=int(period_s * 1000)):
            return None
        return self.run_once()

    def run_once(self, now: float | None = None) -> SweepReport:
        now = time.time() if now is None else now
        report = SweepReport(ts=now)
        report.claims_reaped = self.claims.reap(self.jobs.is_live)
        active = self.jobs.active()  # read once: both passes below need it
        report.jobs_requeued = self._requeue_lost(active, now)
        if self.probe:
            try:
                report.sources_probed = self.probe()
            except Exception as e:  # a probe must never stop the sweep
                log.warning("source probe failed: %s", e)
        report.orphans, report.temp_files_removed = self._scan_disk(active, now)
        self.client.set(LAST_KEY, json.dumps(asdict(report)))
        if report.changed or report.orphans:
            log.info("sweep: reaped %d claims, re-queued %d jobs, %d orphans, removed %d temp files",
                     len(report.claims_reaped), len(report.jobs_requeued), len(report.orphans),
                     len(report.temp_files_removed))
        return report

    def _requeue_lost(self, active: list[dict[str, str]], now: float) -> list[str]:
        live = [j for j in active if j.get("status") in (QUEUED, RUNNING)]
        idle = [j for j in live if now - float(j.get("updated_at") or 0) > self.grace_s]
        if not idle:
            return []
        held = pending_job_ids(self.client)
        out = []
        for j in idle:
            if j["job_id"] in held:
                continue
            stage = j.get("stage") or "resolve"
            stage = "resolve" if stage in ("queued", "") else stage
            self.jobs.update(j["job_id"], message=f"re-queued by the sweep at stage {stage}")
            self.requeue(stage, j["avid"], j["job_id"])
            log.warning("job %s (%s) had no message for %.0f s; re-queued at %s",
                        j["job_id"], j["avid"], now - float(j.get("updated_at") or 0), stage)
            out.append(j["job_id"])
        return out

    def _scan_disk(self, active: list[dict[str, str]], now: float) -> tuple[list[str], list[str]]:
        orphans, removed = [], []
        root = self.store.root
        if not root.is_dir():
            return orphans, removed
        live_avids = {j.get("avid") for j in active}
        for avid in self.store.avids():
            d = self.store.dir(avid)
            for tmp in d.glob(".*.tmp"):
                if now - tmp.stat().st_mtime > TEMP_MAX_AGE_S:
                    tmp.unlink(missing_ok=True)
                    removed.append(str(tmp.relative_to(root)))
            if not self.store.meta(avid).exists() and avid.code not in live_avids:
                orphans.append(f"{avid.code}/ has no {avid.code}.json")
        parts = root / ".parts"
        if parts.is_dir():
            for p in parts.iterdir():
                if p.name not in live_avids:
                    orphans.append(f".parts/{p.name} belongs to no live job")
        return orphans, removed


def last_report(client: redis.Redis) -> dict | None:
    raw = client.get(LAST_KEY)
    return json.loads(raw) if raw else None

