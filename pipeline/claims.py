"""Per-AVID claims: at most one live job per AVID, decided by one Redis command.

The claim key holds the job id. It has no TTL on purpose: a job may wait in the download
queue for hours. Instead, a claim whose job is gone or finished is reaped by :meth:`reap`
(the sweep calls it), and the job itself releases its claim when it ends.
"""

from __future__ import annotations

from typing import Callable

import redis

PREFIX = "nassav:claim:"

# Delete only if the claim still belongs to this job: a late release must never free
# a claim that a newer job has taken since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def claim_key(avid: str) -> str:
    return PREFIX + avid


class Claims:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._release = client.register_script(_RELEASE)

    def claim(self, avid: str, job_id: str) -> str | None:
        """Take the claim for ``avid``. Returns None when won, else the holder's job id."""
        if self.client.set(claim_key(avid), job_id, nx=True):
            return None
        holder = self.holder(avid)
        # The holder may have released between our SET and GET: try once more.
        if holder is None and self.client.set(claim_key(avid), job_id, nx=True):
            return None
        return holder or ""

    def holder(self, avid: str) -> str | None:
        v = self.client.get(claim_key(avid))
        return v.decode() if isinstance(v, bytes) else v

    def release(self, avid: str, job_id: str) -> bool:
        """Release the claim if ``job_id`` still holds it."""
        return bool(self._release(keys=[claim_key(avid)], args=[job_id]))

    def all(self) -> dict[str, str]:
        out = {}
        for key in self.client.scan_iter(match=PREFIX + "*", count=500):
            k = key.decode() if isinstance(key, bytes) else key
            v = self.client.get(k)
            if v is not None:
                out[k[len(PREFIX):]] = v.decode() if isinstance(v, bytes) else v
        return out

    def reap(self, job_is_live: Callable[[str], bool]) -> list[str]:
        """Release every claim whose job is not live; returns the AVIDs freed."""
        freed = []
        for avid, job_id in self.all().items():
            if not job_is_live(job_id) and self.release(avid, job_id):
                freed.append(avid)
        return freed
