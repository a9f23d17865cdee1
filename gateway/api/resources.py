"""The library: list and search, one resource's metadata, user state, add/refresh/delete.

The cover handler is a media route (``gateway/api/media.py``); the library's route table still
lists it, so it stays wherever the library is mounted (``/api``, ``/nassav/api``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.api import downloads
from gateway.api.common import (MAX_BATCH, MAX_PAGE_SIZE, ApiError, ApiState, avid_of, body_bool,
                                bool_param, choice_param, doc, envelope, int_param, json_object,
                                notify, paginated, state)
from gateway.api.media import COVER_WIDTHS, cover
from gateway.index import SORT_KEYS, STATUSES, Query
from gateway.index_rows import as_list, as_mapping
from pipeline.avid import Avid, parse
from pipeline.errors import InvalidAvid, OtherEdition
from pipeline.editions import KNOWN


def _prefix(request: Request) -> str:
    """``/api`` or ``/nassav/api``: links in answers point back through the same mount."""
    return request.scope.get("root_path", "") or "/api"


def _with_links(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    base = f"{_prefix(request)}/resource/cover?avid={item['avid']}"
    item["thumbnail_url"] = f"{base}&size=small" if item.get("has_cover") else None
    item["cover_url"] = f"{base}&size=large" if item.get("has_cover") else None
    return item


async def indexed(st, avid: Avid) -> dict[str, Any] | None:
    """The AVID's index row, syncing it from disk first when the index does not know it yet."""
    row = await run_in_threadpool(st.index.get, avid.code)
    if row is None:
        await run_in_threadpool(st.index.sync, [avid])
        row = await run_in_threadpool(st.index.get, avid.code)
    return row


# -- list, metadata, preview ----------------------------------------------------------------

@doc(query={"search": "words matched in AVID, titles and actor names (all must match)",
            "status": "downloaded | pending | all (default all)", "watched": "true | false",
            "is_favorite": "true | false", "source": "source name", "actor": "actor name or id",
            "genre": "genre name or id", "edition": "C | UC | U | regular (the edition the library holds)",
            "sort_by": f"{' | '.join(SORT_KEYS)} (default metadata_create_time)",
            "order": "asc | desc (default desc)", "page": "1…", "page_size": f"1…{MAX_PAGE_SIZE} (default 20)"})
async def list_resources(request: Request) -> JSONResponse:
    """The library, filtered, searched, sorted and paginated."""
    p = request.query_params
    q = Query(
        search=p.get("search", "")[:200], status=choice_param(p, "status", STATUSES, "all"),
        watched=bool_param(p, "watched"), is_favorite=bool_param(p, "is_favorite"),
        source=p.get("source", ""), actor=p.get("actor", ""), genre=p.get("genre", ""),
        sort_by=choice_param(p, "sort_by", tuple(SORT_KEYS), "metadata_create_time"),
        order=choice_param(p, "order", ("asc", "desc"), "desc"),
        page=int_param(p, "page", 1, lo=1, hi=1_000_000),
        page_size=int_param(p, "page_size", 20, lo=1, hi=MAX_PAGE_SIZE),
        edition=_edition_param(p))
    st = state(request)
    items, total = await run_in_threadpool(st.index.list, q)
    return paginated([_with_links(request, i) for i in items], total=total, page=q.page, page_size=q.page_size)


def _edition_param(params) -> str | None:
    """``?edition=`` as an edition code (``regular`` → ``""``); None when absent."""
    raw = params.get("edition")
    if raw is None or raw == "":
        return None
    code = KNOWN.get(raw.strip().upper())
    if code is None:
        raise ApiError(400, f"edition must be one of C, UC, U, regular (got {raw[:40]!r})")
    return code


def _files(st, avid: Avid) -> list[dict[str, Any]]:
    d = st.store.dir(avid)
    if not d.is_dir():
        return []
    return [{"name": str(f.relative_to(d)), "bytes": f.stat().st_size}
            for f in sorted(d.rglob("*")) if f.is_file() and not f.name.startswith(".")]


@doc(query={"avid": "the AVID"}, responses={404: "no metadata for this AVID"})
async def metadata(request: Request) -> JSONResponse:
    """The AVID's metadata JSON, its files, and the user's state."""
    st = state(request)
    avid = avid_of(request.query_params.get("avid", ""))
    meta = await run_in_threadpool(st.store.read_meta, avid)
    if not isinstance(meta, dict):
        raise ApiError(404, f"{avid.code} has no readable metadata")
    row = await indexed(st, avid)
    videos = await run_in_threadpool(st.store.videos, avid, meta)
    meta["has_video"] = bool(videos)
    # Part order; an in-place import's file is outside the folder, so ``files`` misses it.
    folder = st.store.dir(avid)
    meta["videos"] = [{"part": n, "file": p.name if p.parent == folder else str(p),
                       "url": f"{_prefix(request)}/resource/{avid.code}/video" + (f"?part={n}" if n > 1 else "")}
                      for n, p in enumerate(videos, 1)]
    meta["files"] = await run_in_threadpool(_files, st, avid)
    if row:
        meta["user"] = {"watched": row["watched"], "is_favorite": row["is_favorite"]}
    return envelope(meta)


async def preview(request: Request) -> JSONResponse:
    """A card's worth of one resource: titles, covers per size, actors, samples, the video."""
    st = state(request)
    avid = avid_of(request.path_params["avid"])
    meta = await run_in_threadpool(st.store.read_meta, avid)
    row = await indexed(st, avid)
    if not isinstance(meta, dict) or row is None:
        raise ApiError(404, f"{avid.code} is not in the library")
    base = f"{_prefix(request)}/resource/cover?avid={avid.code}"
    item = _with_links(request, dict(row))
    item.update({
        "covers": {s: f"{base}&size={s}" for s in COVER_WIDTHS} if row["has_cover"] else {},
        "samples": [x for x in as_list(meta.get("samples")) if isinstance(x, str)],
        "actors": [{"name": a.get("name"), "avatar_url": a.get("avatar_url")}
                   for a in as_list(meta.get("actors")) if isinstance(a, dict)],
        "director": meta.get("director", ""), "label": meta.get("label", ""),
        "video": meta.get("video") if row["has_video"] else None,
        "page_url": as_mapping(meta.get("source")).get("page_url"),
    })
    return envelope(item)


# -- user state, add, refresh, delete ---------------------------------------------------------

async def set_status(st, avid_text: object, watched: bool | None, is_favorite: bool | None):
    avid = avid_of(avid_text)
    if watched is None and is_favorite is None:
        raise ApiError(400, "send watched and/or is_favorite as true or false")
    if await indexed(st, avid) is None:
        raise ApiError(404, f"{avid.code} is not in the library")
    user = await run_in_threadpool(st.index.set_user_state, avid.code, watched=watched, is_favorite=is_favorite)
    if user is None:
        raise ApiError(404, f"{avid.code} is not in the library")
    # Kept in the JSON too, so a rebuild from disk keeps it (under the folder's lock: a
    # worker's metadata update at the same moment loses nothing, nor does this).
    await run_in_threadpool(st.store.update_user, avid, user)
    return 200, f"{avid.code} updated", {"avid": avid.code, **user}


@doc(body={"watched": "true | false (optional)", "is_favorite": "true | false (optional)"},
     responses={404: "not in the library"})
async def patch_status(request: Request) -> JSONResponse:
    """Mark a resource watched and/or favourite."""
    body = await json_object(request)
    code, message, data = await set_status(state(request), request.path_params["avid"],
                                           body_bool(body, "watched"), body_bool(body, "is_favorite"))
    return envelope(data, code=code, message=message)


def _source_choice(st, source: object) -> str:
    if source in (None, "", "any"):
        return "any"
    names = list(st.config.sources)
    if source not in names:
        raise ApiError(400, f"source must be \"any\" or one of {', '.join(names)}")
    return str(source)


# What a refresh fetches again (the job's ``refresh`` field, actors/stages.py: refresh_parts):
# the playlist and the metadata, as the old client's refresh does by default.
REFRESH_ALL = "m3u8,metadata"


async def add(st, avid_text: object, source: object = "any", *, refresh: bool = False):
    """Queue a metadata job (resolve + scrape + cover) for an AVID; ``refresh`` fetches
    again what the library already holds."""
    avid = avid_of(avid_text)
    source = _source_choice(st, source)
    # The resolve stage asks the preferred source first, then the others by weight. A refresh
    # says so on the job, so its stages fetch again and a retry of it is a refresh too.
    fields = {**({"source_pref": source} if source != "any" else {}), **({"refresh": REFRESH_ALL} if refresh else {})}
    code, message, data = await downloads.submit(st, avid.full, "metadata", fields or None, refresh=refresh)
    if code == 202:
        data["source"] = source
    return code, message, data


@doc(body={"avid": "the AVID", "source": "\"any\" (default) or a source name"},
     responses={202: "queued (data.job_id)", 409: "already in the library or a job holds it"})
async def add_resource(request: Request) -> JSONResponse:
    """Add an AVID to the library: resolve, scrape and cover, without downloading."""
    body = await json_object(request)
    code, message, data = await add(state(request), body.get("avid"), body.get("source", "any"))
    return envelope(data, code=code, message=message)


@doc(responses={202: "queued", 409: "a job holds it"})
async def refresh_resource(request: Request) -> JSONResponse:
    """Fetch an AVID's metadata again (resolve, scrape, cover)."""
    code, message, data = await add(state(request), request.path_params["avid"], refresh=True)
    return envelope(data, code=code, message=message)


async def delete(st: ApiState, avid_text: object):
    """Remove the AVID's folder, parts and cached covers; says which files went.

    The folder's rename decides: of two concurrent deletes one gets 200, the other 404. An
    AVID naming another edition than the folder holds (``ABC-123-C`` when the library holds
    ``ABC-123``) is a 404 that says what the library holds and the request that deletes it."""
    avid = avid_of(avid_text)
    job = await st.jobs.live_job(avid.code)
    if job:
        raise ApiError(409, f"{avid.code} has a job in progress ({job}); cancel it first "
                            f"(DELETE /api/downloads/{avid.code})", {"avid": avid.code, "job_id": job})

    def work() -> list[str] | None:
        gone = st.store.delete(avid)
        if gone is not None:
            st.store.drop_cover_cache(avid, COVER_WIDTHS)
        return gone

    try:
        gone = await run_in_threadpool(work)
    except OtherEdition as e:
        held = e.held or avid.code
        raise ApiError(404, f"{e}; to delete it: DELETE /api/resource/{held}",
                       {"avid": avid.code, "edition": avid.edition, "held": e.held,
                        "delete": f"DELETE /api/resource/{held}"}) from None
    await run_in_threadpool(st.index.remove, avid.code)  # a stale row goes either way
    if gone is None:
        raise ApiError(404, f"{avid.full} is not in the library")
    await notify(st, "resource_deleted", avid.code, files=gone)
    return 200, f"{avid.full} deleted ({len(gone)} files)", {"avid": avid.code, "deleted_files": gone}


@doc(responses={200: "data.deleted_files lists what went",
                404: "not in the library, or the folder holds another edition (data.delete names "
                     "the request that deletes it)", 409: "a job is in progress"})
async def delete_resource(request: Request) -> JSONResponse:
    """Delete an AVID's files (video, metadata, covers, NFO, partial download)."""
    code, message, data = await delete(state(request), request.path_params["avid"])
    return envelope(data, code=code, message=message)


BATCH_ACTIONS = ("add", "refresh", "download", "cancel", "delete", "status")


async def _one_action(st, a: Any):
    if not isinstance(a, dict):
        raise ApiError(400, "each action must be an object {action, avid, …}")
    action, avid = a.get("action"), a.get("avid")
    if action == "add":
        return await add(st, avid, a.get("source", "any"))
    if action == "refresh":
        return await add(st, avid, a.get("source", "any"), refresh=True)
    if action == "download":
        return await downloads.submit(st, avid, "download")
    if action == "cancel":
        return await downloads.cancel(st, avid)
    if action == "delete":
        return await delete(st, avid)
    if action == "status":
        return await set_status(st, avid, body_bool(a, "watched"), body_bool(a, "is_favorite"))
    raise ApiError(400, f"action must be one of {', '.join(BATCH_ACTIONS)}")


@doc(body={"actions": f"list of {{action, avid, …}} (at most {MAX_BATCH}); action: {' | '.join(BATCH_ACTIONS)}"},
     responses={202: "one result per action"})
async def batch(request: Request) -> JSONResponse:
    """Many library actions in one request; each gets its own result."""
    st = state(request)
    actions = downloads.avid_list(await json_object(request), "actions")
    results = await downloads.each(lambda a: _one_action(st, a), actions)
    for r, a in zip(results, actions):
        r["action"] = a.get("action") if isinstance(a, dict) else None
        r["avid"] = a.get("avid") if isinstance(a, dict) else None
    return downloads.batch_answer(results)


# -- actors and genres ------------------------------------------------------------------------

@doc(query={"search": "part of a name", "sort_by": "count | name", "page": "1…",
            "page_size": f"1…{MAX_PAGE_SIZE} (default 50)"})
async def list_actors(request: Request) -> JSONResponse:
    """Actors in the library with how many resources each has."""
    p = request.query_params
    page = int_param(p, "page", 1, lo=1, hi=1_000_000)
    page_size = int_param(p, "page_size", 50, lo=1, hi=MAX_PAGE_SIZE)
    sort_by = choice_param(p, "sort_by", ("count", "name"), "count")
    prefix = _prefix(request)
    items, total = await run_in_threadpool(state(request).index.actors, search=p.get("search", "")[:100],
                                           page=page, page_size=page_size, sort_by=sort_by)
    for i in items:
        i["avatar"] = f"{prefix}/actors/{i['id']}/avatar"
    return paginated(items, total=total, page=page, page_size=page_size)


def local_avatar(st, actor: dict[str, Any]) -> Path | None:
    """The actor's photo in one of their titles' folders, if any was stored."""
    for code in actor["avids"]:
        try:
            avid = parse(code)
        except InvalidAvid:
            continue  # the index holds folder names, which are AVIDs; skip anything else
        found = st.store.find_actor_photo(avid, actor["name"])
        if found:
            return found
    return None


@doc(responses={200: "the photo stored in the library", 302: "redirect to the catalogue's photo",
                404: "no photo known"})
async def actor_avatar(request: Request) -> Response:
    """An actor's photo: the copy in the library when there is one, else the catalogue's URL."""
    st = state(request)
    actor = await run_in_threadpool(st.index.actor, request.path_params["id"])
    if actor is None:
        raise ApiError(404, f"no actor with id {request.path_params['id']}")
    local = await run_in_threadpool(local_avatar, st, actor)
    if local:
        return FileResponse(local, headers={"Cache-Control": "no-cache"})
    url = actor.get("avatar_url") or ""
    if url.startswith(("http://", "https://")) and "nowprinting" not in url:
        return RedirectResponse(url, status_code=302)
    raise ApiError(404, f"no photo for {actor['name']}")


@doc(query={"search": "part of a name", "page": "1…", "page_size": f"1…{MAX_PAGE_SIZE} (default 100)"})
async def list_genres(request: Request) -> JSONResponse:
    """Genres in the library: ``{id, name, resource_count}``."""
    p = request.query_params
    page = int_param(p, "page", 1, lo=1, hi=1_000_000)
    page_size = int_param(p, "page_size", 100, lo=1, hi=MAX_PAGE_SIZE)
    items, total = await run_in_threadpool(state(request).index.genres, search=p.get("search", "")[:100],
                                           page=page, page_size=page_size)
    return paginated(items, total=total, page=page, page_size=page_size)


def routes() -> list[Route]:
    return [
        Route("/resources/", list_resources, methods=["GET"]),
        Route("/resources", list_resources, methods=["GET"], include_in_schema=False),
        Route("/resources/batch", batch, methods=["POST"]),
        Route("/resource", add_resource, methods=["POST"]),
        Route("/resource/", add_resource, methods=["POST"], include_in_schema=False),
        Route("/resource/cover", cover, methods=["GET"]),
        Route("/resource/metadata", metadata, methods=["GET"]),
        Route("/resource/refresh/{avid}", refresh_resource, methods=["POST"]),
        Route("/resource/{avid}/preview", preview, methods=["GET"]),
        Route("/resource/{avid}/status", patch_status, methods=["PATCH"]),
        Route("/resource/{avid}", delete_resource, methods=["DELETE"]),
        Route("/actors/", list_actors, methods=["GET"]),
        Route("/actors", list_actors, methods=["GET"], include_in_schema=False),
        Route("/actors/{id:int}/avatar", actor_avatar, methods=["GET"]),
        Route("/genres/", list_genres, methods=["GET"]),
        Route("/genres", list_genres, methods=["GET"], include_in_schema=False),
    ]
