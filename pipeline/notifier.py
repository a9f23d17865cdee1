"""Turning events into deliveries, and carrying one delivery out.

:meth:`Notifier.dispatch` reads one event, finds the notify targets and media servers that
want its type, and records one delivery each (with what will be sent, built now: the title
and the folder as they are when the event happened). :meth:`Notifier.deliver` makes one
attempt at a delivery and says whether to try again and when; after ``notify.max_attempts``
failed attempts the delivery is ``failed`` and a ``notify_failed`` event reports it (never to
the target that failed, so a dead target cannot feed itself). Nothing here raises for a
target's trouble: a job is never failed by a notification.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis

from pipeline import deliveries as dv, notify_message as msg, notify_send as send
from pipeline.notify_match import types_of, wants
from pipeline.avid import parse
from pipeline.config import Config, MediaServerConfig, NotifyTarget
from pipeline.errors import InvalidAvid
from pipeline.events import Event, Events
from pipeline.logs import redact
from pipeline.store import ResourceStore

log = logging.getLogger("nassav.notify")

NOTIFY_FAILED = "notify_failed"
# POST /api/notifications/test appends it: delivered to the one target it names (data.target),
# whatever that target's events are.
NOTIFY_TEST = "notify_test"


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered | retrying | failed | skipped
    retry_in_s: float | None = None


def backoff_s(attempt: int, min_s: float, max_s: float) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): doubling from ``min_s``."""
    return min(max_s, min_s * 2 ** max(0, attempt - 1))


class Notifier:
    def __init__(self, config: Config, client: redis.Redis, *, store: ResourceStore | None = None,
                 events: Events | None = None):
        self.config = config
        self.client = client
        self.store = store or ResourceStore(config.data_path)
        self.events = events or Events(client, maxlen=config.events_maxlen)
        self.deliveries = dv.Deliveries(client, keep=config.notify.deliveries_kept)
        self.targets = {t.name: t for t in config.notify.targets}
        self.servers = {(m.name or m.kind): m for m in config.media_servers}

    @property
    def configured(self) -> bool:
        return bool(self.targets or self.servers)

    def event_types(self) -> set[str]:
        return types_of(e for t in self.targets.values() for e in t.events) | \
               types_of(e for m in self.servers.values() for e in m.events) | {NOTIFY_TEST}

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, e: Event) -> list[str]:
        """Record a delivery for each target that wants ``e``; the ids of the new ones."""
        if e.type == NOTIFY_TEST:
            return self._dispatch_test(e)
        if e.data.get("unchanged"):
            return []  # a job that changed nothing (an edition check that found no better one)
        created = []
        for t in self.targets.values():
            if not wants(t.events, e) or (e.type == NOTIFY_FAILED and e.data.get("target") == t.name):
                continue
            if self._create(e, t.name, t.kind, self._notify_payload(e, t)):
                created.append(dv.delivery_id(e.id, t.name))
        folder = self._folder(e) if e.type != NOTIFY_FAILED else None
        for name, m in self.servers.items():
            # A media server rescans each title's folder, imported ones too: no quiet kinds.
            if folder and wants(m.events, e, quiet=()):
                if self._create(e, name, m.kind, {"folder": folder, "avid": e.avid}):
                    created.append(dv.delivery_id(e.id, name))
        return created

    def _dispatch_test(self, e: Event) -> list[str]:
        name = str(e.data.get("target") or "")
        if name in self.targets:
            payload = self._notify_payload(e, self.targets[name])
        elif name in self.servers:
            folder = self._folder(e) or str(self.store.root)
            payload = {"folder": folder, "avid": e.avid}
        else:
            return []
        kind = self.targets[name].kind if name in self.targets else self.servers[name].kind
        return [dv.delivery_id(e.id, name)] if self._create(e, name, kind, payload) else []

    def _create(self, e: Event, name: str, kind: str, payload: dict[str, Any]) -> bool:
        return self.deliveries.create(dv.delivery_id(e.id, name), target=name, kind=kind, event=e.type,
                                      event_id=e.id, avid=e.avid, payload=payload)

    def _notify_payload(self, e: Event, t: NotifyTarget) -> dict[str, Any]:
        fields = msg.fields_of(e, title=self._title(e.avid), public_url=self.config.notify.public_url)
        title, body = msg.message(t.template, fields)
        if t.kind == "apprise":
            return {"title": title, "body": body}
        return msg.webhook_payload(e, dv.delivery_id(e.id, t.name), title, body, fields)

    def _title(self, avid: str) -> str:
        try:
            meta = self.store.read_meta(parse(avid)) if avid else None
        except InvalidAvid:
            return ""
        if not isinstance(meta, dict):
            return ""
        return str(meta.get("title") or meta.get("source_title") or meta.get("original_title") or "")

    def _folder(self, e: Event) -> str:
        """The title's folder on this machine, or '' (no AVID, or not one)."""
        if not e.avid:
            return ""
        try:
            return str(self.store.dir(parse(e.avid)))
        except (InvalidAvid, ValueError):
            return ""

    # -- deliver ------------------------------------------------------------------------

    def deliver(self, delivery_id: str, attempt: int, origin: str = "") -> Outcome:
        """Attempt ``delivery_id`` once (this is attempt number ``attempt``, sent by ``origin``:
        "" the dispatcher and retries, ``recovered`` the re-send of a stuck one)."""
        # The claim, not a status read: a late original and its re-send never both send.
        if not self.deliveries.begin(delivery_id, attempt, origin):
            return Outcome("skipped")
        rec = self.deliveries.get(delivery_id)
        if not rec or rec.get("status") in dv.FINAL:
            return Outcome("skipped")
        name = rec.get("target", "")
        try:
            payload = json.loads(rec.get("payload") or "{}")
            status = self._send(name, payload)
        except send.DeliveryFailed as e:
            return self._failed(rec, attempt, str(e), e.status)
        except Exception as e:  # noqa: BLE001 - a sender's bug must not end the worker thread
            log.exception("notify: internal error delivering %s", delivery_id)
            return self._failed(rec, attempt, f"internal error: {type(e).__name__}: {redact(str(e))[:200]}", None)
        self.deliveries.attempted(delivery_id, attempts=attempt, status=dv.DELIVERED, http_status=status)
        log.info("notify: %s delivered to %s (attempt %d)", rec.get("event"), name, attempt)
        return Outcome(dv.DELIVERED)

    def _send(self, name: str, payload: dict[str, Any]) -> int:
        timeout = self.config.notify.timeout_s
        if name in self.targets:
            t = self.targets[name]
            if t.kind == "apprise":
                return send.send_apprise(t, payload.get("title", ""), payload.get("body", ""))
            with send.client(timeout) as http:
                return send.send_webhook(http, t, payload)
        if name in self.servers:
            server: MediaServerConfig = self.servers[name]
            with send.client(timeout) as http:
                return send.rescan(http, server, payload.get("folder", ""))
        raise send.DeliveryFailed(name, "this target is no longer in the config")

    def _failed(self, rec: dict[str, str], attempt: int, error: str, http_status: int | None) -> Outcome:
        n = self.config.notify
        did, name = rec["id"], rec.get("target", "")
        if attempt < n.max_attempts and name in {**self.targets, **self.servers}:
            wait = backoff_s(attempt, n.min_backoff_s, n.max_backoff_s)
            self.deliveries.attempted(did, attempts=attempt, status=dv.RETRYING, http_status=http_status, error=error)
            log.warning("notify: %s to %s failed (attempt %d of %d): %s; again in %.1f s",
                        rec.get("event"), name, attempt, n.max_attempts, error, wait)
            return Outcome(dv.RETRYING, wait)
        self.deliveries.attempted(did, attempts=attempt, status=dv.FAILED, http_status=http_status, error=error)
        log.error("notify: %s to %s given up after %d attempts: %s", rec.get("event"), name, attempt, error)
        self.report_failed(rec, attempt, f"notification to {name} failed: {error}")
        return Outcome(dv.FAILED)

    def report_failed(self, rec: dict[str, str], attempts: int, message: str) -> None:
        """Append the ``notify_failed`` event of a delivery that will not be made."""
        self.events.emit(NOTIFY_FAILED, avid=rec.get("avid", ""), job_id="", stage="notify",
                         data={"target": rec.get("target", ""), "delivery_id": rec.get("id", ""),
                               "event": rec.get("event", ""), "attempts": attempts, "message": message})
