"""The old client's library calls: sources, metadata, preview, the video's path and deletion,
actors and genres by id, and its settings.

Each handler reads nassav's store and index (or calls ``gateway/api``) and answers in the old
shape (``gateway/compat/shapes.py``). Adding and refreshing are in ``adding.py``; the older
generation's endpoints in ``old_readme.py``. What is not translated here is nassav's own
route, served as is (the list, covers, user state, deleting a title, cookies' delete).
"""

from __future__ import annotations

import datetime
from pathlib import PurePosixPath
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api import downloads as downloads_api, media, ops as ops_api, resources as resources_api
from gateway.api import sources as sources_api
from gateway.api.common import (MAX_PAGE_SIZE, ApiError, avid_of, choice_param, doc, envelope,
                                int_param, json_object, paginated, state)
import gateway.compat.adding as adding
import gateway.compat.old_readme as old_readme
import gateway.compat.shapes as shapes
from gateway.compat.settings import get_settings, put_settings, ui_settings
from pipeline import cookies as cookie_store
from pipeline.avid import Avid


async def flat_metadata(st, avid: Avid) -> dict[str, Any] | None:
    """The title's flat metadata, or None when it has no readable metadata."""
    meta = await run_in_threadpool(st.store.read_meta, avid)
    if not isinstance(meta, dict):
        return None
    row = await resources_api.indexed(st, avid)
    return shapes.metadata(avid.code, meta, video_bytes=adding.video_bytes(st, avid), user=row)


# -- sources ----------------------------------------------------------------------------------

@doc(responses={200: "data: the enabled sources' names, best weight first"})
async def source_list(request: Request) -> JSONResponse:
    """The enabled video sources' names (the Add page's choices, the Cookie tab's rows)."""
    st = state(request)
    return envelope([name for name, _ in st.config.sources_by_weight()])


@doc(responses={200: "data: [{source, cookie (masked), mtime}]"})
async def cookie_list(request: Request) -> JSONResponse:
    """Stored cookies as the Cookie tab lists them; masked, never whole."""
    st = state(request)
    jar = await run_in_threadpool(cookie_store.load, st.config.data_path)
    try:
        stamp = cookie_store.path(st.config.data_path).stat().st_mtime
        mtime = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).isoformat()
    except OSError:
        mtime = None
    return envelope([{"source": n, "cookie": cookie_store.mask(c), "mtime": mtime}
                     for n, c in sorted(jar.items()) if c])


@doc(body={"source": "a source name", "cookie": "\"name=value; …\"", "auto": "true: fetch it in the background"},
     responses={400: "the cookie is the masked one the list showed"})
async def cookie_set(request: Request) -> JSONResponse:
    """Store a source's cookie (nassav's own call), refusing the masked text the list showed:
    the old client pre-fills its edit box with it, and saving it would store a broken cookie."""
    st = state(request)
    body = await json_object(request)
    text, name = body.get("cookie"), body.get("source")
    if isinstance(text, str) and isinstance(name, str) and "…" in text:
        jar = await run_in_threadpool(cookie_store.load, st.config.data_path)
        if jar.get(name) and text.strip() == cookie_store.mask(jar[name]):
            raise ApiError(400, "that is the masked cookie the list shows; nassav never shows a stored "
                                "cookie whole: paste the whole cookie (\"name=value; …\") to replace it")
    return await sources_api.set_cookie(request)


# -- one title --------------------------------------------------------------------------------

@doc(query={"avid": "the AVID"}, responses={200: "the flat metadata the detail page reads", 404: "no metadata"})
async def metadata(request: Request) -> JSONResponse:
    """A title's metadata, flat: names for source, actors and genres, ``file_exists``,
    ``file_size``, ``duration`` ("N分钟"), ``watched``, ``is_favorite``."""
    st = state(request)
    avid = avid_of(request.query_params.get("avid", ""))
    flat = await flat_metadata(st, avid)
    if flat is None:
        raise ApiError(404, f"{avid.code} has no metadata in the library")
    return envelope(flat)


@doc(responses={200: "data: {metadata, thumbnail_url}", 404: "not in the library"})
async def preview(request: Request) -> JSONResponse:
    """The detail page's first paint: the flat metadata and the small cover's URL."""
    st = state(request)
    avid = avid_of(request.path_params["avid"])
    flat = await flat_metadata(st, avid)
    if flat is None:
        raise ApiError(404, f"{avid.code} is not in the library")
    url = f"{request.scope.get('root_path', '')}/resource/cover?avid={avid.code}&size=small"
    try:
        url += f"&v={int(st.store.cover(avid).stat().st_mtime)}"
    except OSError:
        pass
    return envelope({"metadata": flat, "thumbnail_url": url})


@doc(query={"avid": "the AVID"}, responses={200: "data.abspath", 404: "no video"})
async def abspath(request: Request) -> JSONResponse:
    """The video's absolute path on the server, after ``ui.file_path_prefix`` (the client copies
    it as a ``file:`` link)."""
    st = state(request)
    avid = avid_of(request.query_params.get("avid", ""))
    if not st.store.has_video(avid):
        raise ApiError(404, f"{avid.code} has no video in the library")
    prefix = (await ui_settings(st)).file_path_prefix
    return envelope({"abspath": f"{prefix}{st.store.video(avid)}"})


@doc(responses={200: "data: {avid, deleted_file, file_size, deleted_files}; metadata and covers stay",
                404: "no video", 409: "a job is in progress"})
async def delete_video(request: Request) -> JSONResponse:
    """Delete only the title's video file (the old meaning of this call); cancelling a job is
    ``DELETE /api/downloads/{avid}`` on nassav's own API. The old client has no way to confirm,
    and its contract is that this call deletes the file: an in-place import's video (the
    user's own file) goes too, where nassav's own API asks for ``?delete_file=true``."""
    st = state(request)
    avid = avid_of(request.path_params["avid"])
    size = adding.video_bytes(st, avid)
    name = st.store.video(avid).name  # before it goes: the first part's, in its container
    _, message, data = await media.delete_video(st, await adding.held_edition(st, request.path_params["avid"]),
                                                originals=True)
    return envelope({"avid": avid.code, "deleted_file": name, "file_size": size,
                     "deleted_files": data["deleted_files"]}, message=message)


@doc(responses={200: "data.deleted_files lists what went", 404: "not in the library", 409: "a job is in progress"})
async def delete_title(request: Request) -> JSONResponse:
    """Delete a title's folder, whichever edition it holds (the old client knows codes only)."""
    st = state(request)
    code, message, data = await resources_api.delete(st, await adding.held_edition(st, request.path_params["avid"]))
    return envelope(data, code=code, message=message)


# -- actors and genres ------------------------------------------------------------------------

def _group_params(request: Request) -> dict[str, Any]:
    p = request.query_params
    return {"search": p.get("search", "").strip()[:100],
            "page": int_param(p, "page", 1, lo=1, hi=1_000_000),
            "page_size": int_param(p, "page_size", 20, lo=1, hi=MAX_PAGE_SIZE),
            "sort_by": choice_param(p, "order_by", ("count", "name"), "count"),
            "order": choice_param(p, "order", ("asc", "desc"), "")}


def _id_param(request: Request) -> int | None:
    raw = request.query_params.get("id", "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, f"id must be a positive integer (got {raw[:20]!r})")
    return int(raw)


def _usable_url(url: str | None) -> str | None:
    ok = bool(url) and url.startswith(("http://", "https://")) and "nowprinting" not in url
    return url if ok else None


def _with_avatar(st, actor: dict[str, Any]) -> dict[str, Any]:
    """``avatar_url`` (the catalogue's, placeholders dropped) and ``avatar_filename``: set when
    ``/actors/{id}/avatar`` has a photo to give (the library's copy, else the catalogue's), the
    client's cue to show one."""
    remote = _usable_url(actor.get("avatar_url"))
    full = actor if "avids" in actor else st.index.actor(actor["id"])
    local = resources_api.local_avatar(st, full) if full else None
    if local:
        filename = local.name
    else:
        filename = (PurePosixPath(remote.split("?")[0]).name or None) if remote else None
    return {"id": actor["id"], "name": actor["name"],
            "resource_count": actor.get("resource_count", len(actor.get("avids", []))),
            "avatar_url": remote, "avatar_filename": filename}


_GROUP_QUERY = {"search": "part of a name", "order_by": "count | name", "order": "asc | desc",
                "page": "1…", "page_size": f"1…{MAX_PAGE_SIZE} (default 20)"}


async def _groups(request: Request, one: Callable[[int], dict[str, Any] | None],
                  many: Callable[..., tuple[list[dict[str, Any]], int]],
                  shape: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> JSONResponse:
    """A page of actors or genres: ``one(id)`` when the query names an ``id``, else ``many``."""
    q, wanted = _group_params(request), _id_param(request)

    def work() -> tuple[list[dict[str, Any]], int]:
        if wanted is not None:
            found = one(wanted)
            items, total = ([found], 1) if found else ([], 0)
        else:
            items, total = many(**q)
        return [shape(i) for i in items], total
    items, total = await run_in_threadpool(work)
    return paginated(items, total=total, page=q["page"], page_size=q["page_size"])


@doc(query={"id": "one actor by id", **_GROUP_QUERY})
async def actors(request: Request) -> JSONResponse:
    """Actors with ``resource_count``, ``avatar_url`` and ``avatar_filename``; ``id`` picks one."""
    st = state(request)
    return await _groups(request, st.index.actor, st.index.actors, lambda a: _with_avatar(st, a))


@doc(query={"id": "one genre by id", **_GROUP_QUERY})
async def genres(request: Request) -> JSONResponse:
    """Genres with ``resource_count``; ``id`` picks one."""
    st = state(request)
    return await _groups(request, st.index.genre, st.index.genres)


def routes() -> list:
    """The library routes relative to ``/nassav/api``: the translations first, then nassav's
    own routes for what the old client reads unchanged (the first match wins)."""
    own: list[Route] = [
        Route("/source/list", source_list, methods=["GET"]),
        Route("/source/cookie", cookie_list, methods=["GET"]),
        Route("/source/cookie", cookie_set, methods=["POST"]),
        Route("/setting", get_settings, methods=["GET"]),
        Route("/setting", put_settings, methods=["PUT"]),
        Route("/resource/metadata", metadata, methods=["GET"]),
        Route("/downloads/metadata", metadata, methods=["GET"]),  # the older generation's name
        Route("/resource/{avid}/preview", preview, methods=["GET"]),
        Route("/downloads/abspath", abspath, methods=["GET"]),
        Route("/downloads/{avid}", delete_video, methods=["DELETE"]),
        Route("/resource/{avid}", delete_title, methods=["DELETE"]),
        Route("/actors/", actors, methods=["GET"]),
        Route("/actors", actors, methods=["GET"], include_in_schema=False),
        Route("/genres/", genres, methods=["GET"]),
        Route("/genres", genres, methods=["GET"], include_in_schema=False),
        *adding.routes(),
        *old_readme.routes(),
    ]
    # nassav's routes for the calls not translated (here or in tasks.py); gateway/compat's
    # api_routes() keeps only the first route of each path and method.
    return [*own, *media.routes(), *resources_api.routes(), *sources_api.routes(), *downloads_api.routes(),
            *ops_api.routes()]
