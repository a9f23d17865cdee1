"""The blocklist (``pipeline/blocklist.py``): list, add and remove entries.

A whole AVID on it is never queued again (every submit is refused with a 403); a source on it
for one AVID is not asked by resolve for that title.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, avid_of, doc, envelope, json_object, state
from pipeline import logs
from pipeline.blocklist import AsyncBlocklist, InvalidBlockEntry, check_source

log = logging.getLogger("nassav.gateway")


def _blocklist(request: Request) -> AsyncBlocklist:
    return AsyncBlocklist(state(request).redis)


def _source(request: Request, raw: object) -> str:
    """A configured source's name, or a 400 naming the accepted ones."""
    try:
        name = check_source(raw)
    except InvalidBlockEntry as e:
        raise ApiError(400, str(e)) from None
    known = list(state(request).config.sources)
    if name not in known:
        raise ApiError(400, f"source {name!r} is not a configured source; one of: {', '.join(known)}")
    return name


@doc(query={"avid": "only this AVID's entries"},
     responses={200: "items {avid, source ('' = the whole AVID), reason, added_at}"})
async def list_blocklist(request: Request) -> JSONResponse:
    """Every blocklist entry, sorted by AVID then source."""
    raw = request.query_params.get("avid")
    avid = avid_of(raw).code if raw else None
    items = [e.as_item() for e in await _blocklist(request).list(avid)]
    return envelope({"items": items, "total": len(items)})


@doc(responses={200: "{avid, blocked: entry or null, sources: [entries]}", 400: "not an AVID"})
async def get_entry(request: Request) -> JSONResponse:
    """The AVID's blocklist state: its whole-AVID entry and its blocked sources."""
    avid = avid_of(request.path_params["avid"])
    entries = await _blocklist(request).list(avid.code)
    whole = next((e.as_item() for e in entries if not e.source), None)
    return envelope({"avid": avid.code, "blocked": whole,
                     "sources": [e.as_item() for e in entries if e.source]})


@doc(body={"source": "optional: block only this source for the AVID (a configured source's name)",
           "reason": "optional text, at most 500 characters"},
     responses={201: "the entry", 400: "not an AVID, an unknown source or a bad reason"})
async def add_entry(request: Request) -> JSONResponse:
    """Block the AVID entirely (never queued again), or one source for it (resolve skips it)."""
    avid = avid_of(request.path_params["avid"])
    body = await json_object(request)
    unknown = set(body) - {"source", "reason"}
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(sorted(unknown))}; send {{source?, reason?}}")
    source = _source(request, body["source"]) if body.get("source") not in (None, "") else ""
    bl = _blocklist(request)
    try:
        entry = await (bl.add_source(avid.code, source, body.get("reason"))
                       if source else bl.add_avid(avid.code, body.get("reason")))
    except InvalidBlockEntry as e:
        raise ApiError(400, str(e)) from None
    what = f"{source} is blocked for {avid.code}" if source else f"{avid.code} is blocked"
    with logs.context(avid=avid.code, stage="blocklist"):
        log.info("blocklist: %s (%s)", what, entry.reason or "no reason given")
    return envelope(entry.as_item(), code=201, message=what)


@doc(responses={200: "removed", 404: "the AVID is not on the blocklist"})
async def remove_entry(request: Request) -> JSONResponse:
    """Lift the AVID's whole-AVID entry (its blocked sources stay)."""
    avid = avid_of(request.path_params["avid"])
    if not await _blocklist(request).remove_avid(avid.code):
        raise ApiError(404, f"{avid.code} is not on the blocklist")
    with logs.context(avid=avid.code, stage="blocklist"):
        log.info("blocklist: %s removed", avid.code)
    return envelope({"avid": avid.code}, message=f"{avid.code} removed from the blocklist")


@doc(responses={200: "removed", 400: "not an AVID or a source name",
                404: "this source is not blocked for the AVID"})
async def remove_source(request: Request) -> JSONResponse:
    """Lift a blocked source for the AVID."""
    avid = avid_of(request.path_params["avid"])
    try:
        source = check_source(request.path_params["source"])
    except InvalidBlockEntry as e:
        raise ApiError(400, str(e)) from None
    if not await _blocklist(request).remove_source(avid.code, source):
        raise ApiError(404, f"{source} is not blocked for {avid.code}")
    with logs.context(avid=avid.code, stage="blocklist"):
        log.info("blocklist: %s unblocked for %s", source, avid.code)
    return envelope({"avid": avid.code, "source": source}, message=f"{source} unblocked for {avid.code}")


def routes() -> list[Route]:
    """The blocklist routes, relative to ``/api``."""
    return [
        Route("/blocklist", list_blocklist, methods=["GET"]),
        Route("/blocklist/{avid}", get_entry, methods=["GET"]),
        Route("/blocklist/{avid}", add_entry, methods=["POST"]),
        Route("/blocklist/{avid}", remove_entry, methods=["DELETE"]),
        Route("/blocklist/{avid}/{source}", remove_source, methods=["DELETE"]),
    ]
