"""Per-AVID claims: at most one live job per AVID, decided by one Redis command.

The claim key holds the job id. It is taken only by the submit script
(:meth:`pipeline.jobs.Jobs.submit`), with the job and its ``queued`` event in the same call.
It has no TTL on purpose: a job may wait in the download queue for hours. Instead, a claim
whose job is gone or finished is reaped by :meth:`reap` (the sweep calls it), and the job
itself releases its claim when it ends.
"""

from __future__ import annotations

from typing import Callable

import redis

from pipeline.lua import RELEASE_IF_HELD

PREFIX = "nassav:claim:"


def claim_key(avid: str) -> str:
    return PREFIX + avid


class Claims:
    """Read, release and reap claims (the sweep's side); taking one is the submit script's job."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._release = client.register_script(RELEASE_IF_HELD)

    def holder(self, avid: str) -> str | None:
        return self.client.get(claim_key(avid))

    def release(self, avid: str, job_id: str) -> bool:
        """Release the claim if ``job_id`` still holds it (a late release must never free a
        claim that a newer job has taken since)."""
        return bool(self._release(keys=[claim_key(avid)], args=[job_id]))

    def all(self) -> dict[str, str]:
        out = {}
        for key in self.client.scan_iter(match=PREFIX + "*", count=500):
            v = self.client.get(key)
            if v is not None:
                out[key[len(PREFIX):]] = v
        return out

    def reap(self, job_is_live: Callable[[str], bool]) -> list[str]:
        """Release every claim whose job is not live; returns the AVIDs freed."""
        freed = []
        for avid, job_id in self.all().items():
            if not job_is_live(job_id) and self.release(avid, job_id):
                freed.append(avid)
        return freed
