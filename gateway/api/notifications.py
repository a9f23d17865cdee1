"""Notifications: the configured targets and media servers (secrets masked), and deliveries.

Deliveries are recorded by the workers (``pipeline/deliveries.py``); this only reads them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.api.common import ApiError, avid_of, choice_param, doc, envelope, int_param, json_object, state
from pipeline import deliveries as dv, events as ev
from pipeline.broker import NOTIFY_QUEUE
from pipeline.notifier import NOTIFY_TEST
from pipeline.notify_send import apprise_scheme, mask_url

STATUSES = ("all", dv.QUEUED, dv.RETRYING, dv.DELIVERED, dv.FAILED, dv.LOST)


def _targets(config) -> list[dict]:
    out = []
    for t in config.notify.targets:
        urls = [u for u in (t.url, *t.urls) if u]
        shown = [mask_url(u) if t.kind == "webhook" else f"{apprise_scheme(u)}://…" for u in urls]
        out.append({"name": t.name, "kind": t.kind, "urls": shown, "events": list(t.events),
                    "signed": bool(t.secret), "template": {"title": t.template.title, "body": t.template.body}})
    for m in config.media_servers:
        out.append({"name": m.name or m.kind, "kind": m.kind, "urls": [mask_url(m.url)], "events": list(m.events),
                    "section": str(m.section) if m.kind == "plex" else None, "path_map": dict(m.path_map),
                    "has_key": bool(m.api_key or m.token)})
    return out


@doc(responses={200: "every notify target and media server; URLs masked, secrets never shown"})
async def list_targets(request: Request) -> JSONResponse:
    """Where notifications and rescans go: name, kind, masked URL, events, template."""
    return envelope(_targets(state(request).config))


@doc(query={"target": "only this target's deliveries", "status": "all|queued|retrying|delivered|failed|lost",
            "limit": "how many, newest first (1-500, default 100)"})
async def list_deliveries(request: Request) -> JSONResponse:
    """Recent deliveries, newest first: target, event, AVID, status, attempts, last HTTP status and error."""
    st = state(request)
    q = request.query_params
    limit = int_param(q, "limit", 100, lo=1, hi=500)
    status = choice_param(q, "status", STATUSES, "all")
    target = q.get("target") or ""
    names = {t["name"] for t in _targets(st.config)}
    if target and target not in names:
        raise ApiError(400, f"target must be one of {', '.join(sorted(names)) or '(none configured)'}")
    ids = await st.redis.lrange(dv.LIST, 0, st.config.notify.deliveries_kept - 1)
    async with st.redis.pipeline(transaction=False) as p:
        for i in ids:
            p.hgetall(dv.key(i))
        raw = await p.execute()
    items = [d for d in dv.decoded(raw)
             if (not target or d.get("target") == target) and (status == "all" or d.get("status") == status)]
    return envelope(items[:limit], message=f"{len(items[:limit])} deliveries")


@doc(body={"target": "a target's or media server's name (GET /api/notifications/targets)",
           "avid": "optional: an AVID for the message's fields (a media server rescans its folder)"},
     responses={202: "the test event is in the stream; its delivery is data.delivery_id"})
async def send_test(request: Request) -> JSONResponse:
    """Send a test notification to one target, whatever events it is set for; follow it in
    GET /api/notifications/deliveries."""
    from gateway.api.ops import workers  # the live worker registry

    st = state(request)
    body = await json_object(request)
    avid = avid_of(body["avid"]).code if "avid" in body else ""
    names = sorted(t["name"] for t in _targets(st.config))
    target = body.get("target")
    if not isinstance(target, str) or target not in names:
        raise ApiError(400, f"target must be one of {', '.join(names) or '(none configured: see notify.targets)'}")
    fields = ev.encode(NOTIFY_TEST, avid=avid, job_id="", stage="notify",
                       data={"target": target, "message": "a test notification from nassav"})
    event_id = await st.redis.xadd(ev.STREAM, fields, maxlen=st.config.events_maxlen, approximate=True)
    serving = [w for w in await workers(st) if NOTIFY_QUEUE in (w.get("queues") or [])]
    message = f"test notification queued for {target}"
    if not serving:
        message += f"; no live worker serves the {NOTIFY_QUEUE} queue, so it waits for one"
    return envelope({"target": target, "event_id": event_id, "delivery_id": dv.delivery_id(event_id, target)},
                    code=202, message=message)


def routes() -> list:
    return [Route("/notifications/targets", list_targets, methods=["GET"]),
            Route("/notifications/deliveries", list_deliveries, methods=["GET"]),
            Route("/notifications/test", send_test, methods=["POST"])]
