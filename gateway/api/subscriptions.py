"""Subscriptions: follow an actress, a maker, a label, a series, a director or a search.

The workers check them (``actors/following.py``); this module stores, lists, shows the
recent checks of, and removes them, and asks for a check now.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, doc, envelope, json_object, state
from pipeline.subscriptions import AsyncSubscriptions, Subscription, SubscriptionInvalid, parse_request, valid_id


def _subs(request: Request) -> AsyncSubscriptions:
    return AsyncSubscriptions(state(request).redis)


def _id(request: Request) -> str:
    try:
        return valid_id(request.path_params["sub_id"])
    except SubscriptionInvalid as e:
        raise ApiError(400, str(e)) from None


async def _found(request: Request, sub_id: str) -> Subscription:
    sub = await _subs(request).get(sub_id)
    if sub is None:
        raise ApiError(404, f"no subscription {sub_id} (see GET /api/subscriptions)")
    return sub


def _shown(sub: Subscription, status: dict[str, Any], *, with_checks: bool) -> dict[str, Any]:
    out = sub.to_json()
    out.update({k: v for k, v in status.items() if k != "checks"})
    checks = status.get("checks") or []
    out["last_check_record"] = checks[0] if checks else None
    if with_checks:
        out["checks"] = checks
    return out


@doc(responses={200: "every subscription with its last check"})
async def list_subscriptions(request: Request) -> JSONResponse:
    """Every subscription, oldest first, with when it was last and will next be checked."""
    subs = _subs(request)
    items = [_shown(s, await subs.status(s.id, 1), with_checks=False) for s in await subs.all()]
    return envelope(items, message=f"{len(items)} subscriptions")


@doc(body={"kind": "actress | maker | label | series | director | search",
           "id_or_query": "the catalogue's id (as in its listing URL, e.g. /star/okq) or the search query",
           "action": "metadata (default: add to the library without video) or download",
           "filters": "{since: YYYY-MM-DD, skip_genres: [...], editions: [C, UC, U, regular], title_regex}",
           "backfill": "titles the first check may queue (default: the config's subscriptions.backfill)",
           "interval_s": "seconds between checks (default: the config's subscriptions.interval_s)",
           "name": "a label to show"},
     responses={201: "followed; the first check is due at once",
                400: "a field is wrong: the message names it; data {field, expected} (e.g. filters.since)",
                409: "already followed (data: the existing subscription)"})
async def add_subscription(request: Request) -> JSONResponse:
    """Follow something: its new titles are queued as they appear."""
    try:
        sub = parse_request(await json_object(request))
    except SubscriptionInvalid as e:
        # data.field lets a form show the message beside the field it names.
        raise ApiError(400, str(e), {"field": e.field, "expected": e.expected}) from None
    subs = _subs(request)
    if not await subs.add(sub):
        existing = await subs.get(sub.id)
        return envelope(existing.to_json() if existing else None, code=409,
                        message=f"{sub.kind} {sub.key} is already followed ({sub.id})")
    return envelope(sub.to_json(), code=201, message=f"following {sub.kind} {sub.key} ({sub.id})")


@doc(responses={200: "the subscription, its state and its last checks", 400: "not a subscription id",
                404: "no such subscription"})
async def get_subscription(request: Request) -> JSONResponse:
    """One subscription with its recent check records (when, pages read, new AVIDs, errors)."""
    sub_id = _id(request)
    sub = await _found(request, sub_id)
    status = await _subs(request).status(sub_id, state(request).config.subscriptions.checks_kept)
    return envelope(_shown(sub, status, with_checks=True))


@doc(responses={200: "unfollowed", 400: "not a subscription id", 404: "no such subscription"})
async def delete_subscription(request: Request) -> JSONResponse:
    """Unfollow: the subscription, what it has seen and its records are forgotten (queued jobs stay)."""
    sub_id = _id(request)
    sub = await _found(request, sub_id)
    await _subs(request).remove(sub_id)
    return envelope({"id": sub_id}, message=f"unfollowed {sub.kind} {sub.key}")


@doc(responses={202: "due now: a worker checks it within subscriptions.tick_s", 400: "not a subscription id",
                404: "no such subscription"})
async def check_subscription(request: Request) -> JSONResponse:
    """Ask for a check now instead of at the next interval."""
    sub_id = _id(request)
    if not await _subs(request).check_now(sub_id):
        raise ApiError(404, f"no subscription {sub_id} (see GET /api/subscriptions)")
    return envelope({"id": sub_id}, code=202, message=f"{sub_id} is due now")


def routes() -> list[Route]:
    return [
        Route("/subscriptions", list_subscriptions, methods=["GET"]),
        Route("/subscriptions", add_subscription, methods=["POST"]),
        Route("/subscriptions/{sub_id}", get_subscription, methods=["GET"]),
        Route("/subscriptions/{sub_id}", delete_subscription, methods=["DELETE"]),
        Route("/subscriptions/{sub_id}/check", check_subscription, methods=["POST"]),
    ]
