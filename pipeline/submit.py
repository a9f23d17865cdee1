"""Submitting a job from a worker-side process (the subscription sweep, tools), as the gateway does.

The same rules as ``POST /api/downloads/{avid}`` and ``POST /api/resource``: a title the
library already holds is not queued again (a video for a download; metadata and cover for a
metadata job), the claim and the job are taken by the one submit script
(:meth:`pipeline.jobs.Jobs.submit`, the op the gateway's ``AsyncJobs.submit`` runs too, so
whatever guards that path guards this one), and a job whose first message cannot be sent is
failed at once so its claim never outlives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pipeline import jobs as jobstates
from pipeline.avid import Avid
from pipeline.errors import NassavError
from pipeline.jobs import Jobs
from pipeline.store import ResourceStore

QUEUED, IN_LIBRARY, EXISTS, REFUSED = "queued", "in_library", "exists", "refused"


@dataclass(frozen=True)
class Submitted:
    avid: str
    # QUEUED; IN_LIBRARY (nothing to do); EXISTS (a job holds the claim); REFUSED (a guard of
    # the submit script said no, e.g. the AVID is on the user's blocklist: the message says why)
    status: str
    job_id: str = ""
    message: str = ""

    @property
    def queued(self) -> bool:
        return self.status == QUEUED


@dataclass(frozen=True)
class InLibrary:
    """The library already holds what a ``kind`` job would fetch: the one submit rule."""

    status: str  # what the API's data.status says: "downloaded" or "exists"
    message: str  # "ABC-123 is already downloaded"
    hint: str = ""  # what to do instead, for an API answer ("refresh it to …")


def in_library(store: ResourceStore, avid: Avid, kind: str) -> InLibrary | None:
    """Why the library needs no ``kind`` job for ``avid`` (None when it does): a video for a
    download, metadata and cover for a metadata job. The worker-side :func:`submit` and the
    gateway's (``gateway/api/downloads.py::submit``) both ask this."""
    if kind == "download" and store.has_video(avid):
        return InLibrary("downloaded", f"{avid.code} is already downloaded")
    if kind == "metadata" and store.meta(avid).exists() and store.cover(avid).exists():
        return InLibrary("exists", f"{avid.code} is already in the library",
                         "refresh it to fetch its metadata again")
    return None


def submit(jobs: Jobs, store: ResourceStore, avid: Avid, kind: str, start: Callable[[str, str], None],
           fields: Mapping[str, Any] | None = None) -> Submitted:
    """Claim and queue one AVID unless the library has it or a job holds its claim.

    ``start(avid, job_id)`` sends the chain's first stage (``actors.registry.Actors.start``).
    Raises whatever ``start`` raised, after failing the job so its claim is freed.
    """
    held = in_library(store, avid, kind)
    if held:
        return Submitted(avid.code, IN_LIBRARY, message=held.message)
    try:
        res = jobs.submit(avid.code, kind, fields=fields)
    except NassavError as e:  # refused by the script (Redis failures are not NassavErrors)
        return Submitted(avid.code, REFUSED, message=str(e))
    if not res.accepted:
        return Submitted(avid.code, EXISTS, res.job_id, f"{avid.code} already has a job in progress")
    try:
        start(avid.code, res.job_id)
    except Exception as e:
        jobs.finish(res.job_id, avid.code, jobstates.FAILED, message=f"could not enqueue: {e}",
                    stage=jobstates.QUEUED)
        raise
    return Submitted(avid.code, QUEUED, res.job_id, f"{avid.code} queued")
