"""Edition upgrades: look for a more preferred edition of a downloaded title (``actors/upgrading.py``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api import downloads
from gateway.api.common import ApiError, avid_of, doc, envelope, state
from pipeline.editions import label, preference

UPGRADE = "upgrade"  # the job kind (actors/stages.py::UPGRADE)


@doc(responses={202: "queued (data.job_id; data.edition is the edition held now, data.editions the "
                     "preference)", 400: "not an AVID", 404: "no video in the library to upgrade",
                409: "a job holds it"})
async def upgrade(request: Request) -> JSONResponse:
    """Look for an edition preferred to the one held (``download.editions``); when a source has
    one, download it beside the old video and replace the old one once the new one verified.
    With none, the job completes and nothing changes."""
    st = state(request)
    avid = avid_of(request.path_params["avid"])

    def held() -> str | None:
        if not st.store.has_video(avid):
            return None
        return (st.store.read_meta(avid) or {}).get("edition") or ""

    edition = await run_in_threadpool(held)
    if edition is None:
        raise ApiError(404, f"{avid.code} has no video to upgrade; download it first "
                            f"(POST /api/downloads/{avid.code})", {"avid": avid.code})
    code, message, data = await downloads.submit(st, avid.code, UPGRADE)
    data.update(edition=label(edition), editions=[label(e) for e in preference(st.config.download.editions)])
    return envelope(data, code=code, message=message)


def routes() -> list:
    """The edition routes, relative to ``/api``."""
    return [Route("/resource/{avid}/upgrade", upgrade, methods=["POST"])]
