"""The periodic edition check: which titles a more preferred edition could replace.

Off by default (``download.upgrade_check_interval_s: 0``). When on, every worker process
runs it on a timer and a Redis lock lets one of them do it per period (as the sweep does);
one pass submits an ``upgrade`` job (``actors/upgrading.py``) through the normal claim path
for each title whose video is not in the most preferred edition. A title with a job in
progress is left for the next pass. The callables keep this free of Dramatiq.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import redis

from pipeline.avid import Avid
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.upgrade_check")

LOCK_KEY = "nassav:upgrade-check:lock"

__all__ = ["LOCK_KEY", "candidates", "UpgradeCheck"]


def candidates(store: ResourceStore, prefs: Sequence[str]) -> list[Avid]:
    """The downloaded titles whose recorded edition is not ``prefs[0]``, the most preferred,
    and was not asked for by the user (``ABC-123-U``: ``edition_asked``, which beats the
    preference as it did at the download). Not an imported video: it is the user's own file,
    which an upgrade would delete once replaced (``upgrade`` by hand still may)."""
    out = []
    for avid in store.avids():
        if not store.has_video(avid):
            continue
        meta = store.read_meta(avid)
        if not isinstance(meta, dict) or meta.get("edition_asked"):
            continue
        video = meta.get("video")
        if isinstance(video, dict) and video.get("imported"):
            continue
        if (meta.get("edition") or "") != prefs[0]:
            out.append(avid)
    return out


class UpgradeCheck:
    """One pass over the library; ``submit(code)`` makes an upgrade job and says whether it was accepted."""

    def __init__(self, client: redis.Redis, store: ResourceStore, prefs: Sequence[str], *,
                 submit: Callable[[str], bool]):
        self.client, self.store, self.prefs, self.submit = client, store, tuple(prefs), submit

    def try_run(self, period_s: float) -> list[str] | None:
        """Run unless another process checked within ``period_s``; the AVIDs queued."""
        if not self.client.set(LOCK_KEY, "1", nx=True, px=int(period_s * 1000)):
            return None
        return self.run_once()

    def run_once(self) -> list[str]:
        queued = [a.code for a in candidates(self.store, self.prefs) if self.submit(a.code)]
        if queued:
            log.info("upgrade check: queued %d edition upgrade(s): %s", len(queued), ", ".join(queued[:20]))
        return queued
