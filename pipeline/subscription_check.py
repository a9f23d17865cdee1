"""One check of one subscription, and the sweep that runs the due ones, one worker each.

A check reads the subscription's listing page by page (newest first) and stops at the first
AVID it has met before (``Subscriptions.mark_seen`` is the gate: the one Redis script whose
``SADD`` adds an AVID decides who may queue it, so two workers racing on the same subscription
queue each title once). The same script holds the title *pending* until it is queued or skipped on
purpose (the record says why), and every check first finishes the pending titles a stopped or
killed check left: a title marked seen is never lost, and the claim refuses a second job for
one already queued. While a check reads page N the next one is told to read past seen titles
up to page N+1, so a killed check's unread older titles are reached too. New titles that pass
the filters are queued through :func:`pipeline.submit.submit` (the library and the claim — and whatever else guards that
path — apply). A new subscription's first check queues at most ``backfill`` titles and then
stops reading. Every check leaves a record and a ``subscription_checked`` event; every queued
title a ``subscription_found`` event.

This module knows nothing of sites or Dramatiq: the listing reader, the genre lookup and the
submit are passed in (``actors/following.py`` wires them).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence

from pipeline.errors import SourceError, SourceNotFound
from pipeline.events import Events
from pipeline.subscriptions import MAX_ATTEMPTS, Subscription, Subscriptions, next_due

log = logging.getLogger("nassav.subscriptions")

SUBSCRIPTION_CHECKED = "subscription_checked"
SUBSCRIPTION_FOUND = "subscription_found"


class Item(Protocol):
    avid: str
    title: str
    release_date: str

    @property
    def editions(self) -> frozenset[str]: ...


class Page(Protocol):
    items: Sequence[Item]
    has_next: bool


@dataclass
class CheckRecord:
    """What one check did (kept in Redis, shown by ``GET /api/subscriptions/{id}``)."""

    subscription: str
    ts: float
    worker: str = ""  # host:pid of the worker that checked
    first: bool = False
    duration_ms: float = 0.0
    pages: int = 0  # listing pages read
    requests: int = 0  # HTTP requests made (listing pages, mirrors tried, title pages for genres)
    new: list[str] = field(default_factory=list)  # AVIDs met for the first time
    resumed: list[str] = field(default_factory=list)  # pending AVIDs an earlier check left undecided
    queued: dict[str, str] = field(default_factory=dict)  # AVID -> job id
    skipped: dict[str, str] = field(default_factory=dict)  # AVID -> why it was not queued
    errors: list[str] = field(default_factory=list)
    stopped: str = ""  # why paging stopped
    resume_page: int = 0  # a page failed: the next check reads past seen titles up to it


@dataclass(frozen=True)
class PendingItem:
    """A title a check marked seen but did not finish, rebuilt from what the listing said."""

    avid: str
    title: str = ""
    release_date: str = ""
    editions: frozenset[str] = frozenset({"regular"})

    @classmethod
    def from_entry(cls, avid: str, entry: dict[str, Any]) -> "PendingItem":
        return cls(avid, entry.get("title", ""), entry.get("release_date", ""),
                   frozenset(entry.get("editions") or ("regular",)))


@dataclass(frozen=True)
class Reader:
    """How a check reaches the catalogue: ``page(n)`` reads listing page n (raising the typed
    source outcomes), ``genres(avid)`` the title's genres (only asked when a genre filter is
    set), ``requests()`` how many HTTP requests the two have made so far."""

    page: Callable[[int], Page]
    genres: Callable[[str], list[str]]
    requests: Callable[[], int]


def check(sub: Subscription, subs: Subscriptions, reader: Reader,
          submit: Callable[[str, str, dict[str, str]], Any], *, events: Events | None = None,
          max_pages: int = 20, backfill: int = 20, keep: int = 20, worker: str = "") -> CheckRecord:
    """Check ``sub`` once: first the titles an earlier check left pending, then the listing.
    ``submit(avid, kind, fields)`` returns a :class:`pipeline.submit.Submitted`; it is called
    only for AVIDs this check won or resumed.

    Returns the :class:`CheckRecord`, also stored and announced.
    """
    started = time.monotonic()
    rec = CheckRecord(subscription=sub.id, ts=time.time(), worker=worker, first=subs.checks_done(sub.id) == 0)
    cap = (sub.backfill if sub.backfill is not None else backfill) if rec.first else None
    requests0 = reader.requests()
    # A check that failed on page N left titles below page N-1 unseen: read past seen ones
    # until that page this time, rather than stop at the first.
    resume_page = subs.resume_page(sub.id)
    # Titles an earlier check marked seen but never queued or skipped (it was killed, or
    # queueing failed): decide them first, since this check will stop at them on the listing.
    for avid, entry in sorted(subs.pending(sub.id).items()):
        rec.resumed.append(avid)
        _consider(sub, subs, reader, submit, PendingItem.from_entry(avid, entry), rec, events, entry)
    newest = ""
    page_no = 0
    while not rec.stopped:
        page_no += 1
        if page_no > max_pages:
            rec.stopped = f"read the maximum of {max_pages} pages"
            break
        # Killed while on this page, the next check must still reach its unread titles.
        subs.progress(sub.id, max(resume_page, page_no + 1))
        try:
            page = reader.page(page_no)
        except SourceNotFound as e:
            rec.stopped = "end of the listing" if page_no > 1 else "listing not found"
            if page_no == 1:
                rec.errors.append(str(e))
            break
        except SourceError as e:
            rec.errors.append(str(e))
            rec.stopped = f"{e.outcome} on page {page_no}"
            rec.resume_page = max(page_no, resume_page)
            break
        rec.pages += 1
        for item in page.items:
            newest = newest or item.avid
            seen = {"title": item.title, "release_date": item.release_date, "editions": sorted(item.editions)}
            if not subs.mark_seen(sub.id, item.avid, seen):
                if page_no < resume_page:
                    continue
                rec.stopped = f"met {item.avid}, seen before"
                break
            rec.new.append(item.avid)
            if cap is not None and len(rec.queued) >= cap:
                # Seen now, so later checks stop here: the back catalogue stays unqueued.
                rec.skipped[item.avid] = f"older than the first check's backfill of {cap}"
                subs.settle(sub.id, item.avid)
                rec.stopped = f"first check: backfill of {cap} reached"
                break
            _consider(sub, subs, reader, submit, item, rec, events, seen)
        else:
            if not page.has_next:
                rec.stopped = "end of the listing"
    rec.requests = reader.requests() - requests0
    rec.duration_ms = round((time.monotonic() - started) * 1000, 1)
    if subs.get(sub.id) is not None:  # not unfollowed meanwhile: keep its record
        subs.record(sub.id, asdict(rec), newest=newest, keep=keep, resume_page=rec.resume_page)
    if events is not None:
        events.emit(SUBSCRIPTION_CHECKED, avid="", job_id="", stage="subscription",
                    data={"subscription": sub.id, "kind": sub.kind, "key": sub.key, "name": sub.label,
                          "pages": rec.pages,
                          "requests": rec.requests, "new": len(rec.new), "queued": len(rec.queued),
                          "errors": rec.errors, "stopped": rec.stopped, "duration_ms": rec.duration_ms})
    log.info("subscription %s (%s %s): %d pages, %d new, %d queued, stopped: %s%s", sub.id, sub.kind,
             sub.key, rec.pages, len(rec.new), len(rec.queued), rec.stopped,
             f", errors: {'; '.join(rec.errors)}" if rec.errors else "")
    return rec


def _consider(sub: Subscription, subs: Subscriptions, reader: Reader, submit, item: Item,
              rec: CheckRecord, events: Events | None, entry: dict[str, Any]) -> None:
    """Queue one AVID this check won (or resumed), or say why not, then settle it; a failure
    keeps it pending for the next check, up to ``MAX_ATTEMPTS`` times."""
    why = sub.filters.refusal(title=item.title, release_date=item.release_date, editions=item.editions)
    res = None
    try:
        if not why and sub.filters.skip_genres:
            why = sub.filters.skipped_genre(reader.genres(item.avid))
        if not why:
            res = submit(item.avid, sub.action, {"subscription": sub.id})
    except SourceError as e:
        # Genres unknown: try again at the next check rather than guess.
        _failed(sub, subs, item, rec, entry, f"genres unknown ({e})")
        return
    except Exception as e:
        _failed(sub, subs, item, rec, entry, f"could not queue ({type(e).__name__}: {e})")
        return
    # Decided either way: queued, or skipped because a filter, the library, a job in progress (a
    # resumed title the killed check had queued already) or the blocklist said no.
    if why:
        rec.skipped[item.avid] = why
    elif not res.queued:
        rec.skipped[item.avid] = res.message or res.status
    else:
        rec.queued[item.avid] = res.job_id
    subs.settle(sub.id, item.avid)
    if why or not res.queued:
        return
    if events is not None:
        events.emit(SUBSCRIPTION_FOUND, avid=item.avid, job_id=res.job_id, stage="subscription",
                    data={"subscription": sub.id, "kind": sub.kind, "key": sub.key, "name": sub.label,
                          "action": sub.action,
                          "title": item.title, "release_date": item.release_date})


def _failed(sub: Subscription, subs: Subscriptions, item: Item, rec: CheckRecord, entry: dict[str, Any],
            why: str) -> None:
    """Queueing failed: keep the title pending for the next check, or give it up at last."""
    attempts = subs.retry_later(sub.id, item.avid, entry)
    rec.errors.append(f"{item.avid}: {why}"[:300])
    if attempts >= MAX_ATTEMPTS:
        rec.skipped[item.avid] = f"gave up after {attempts} failed attempts: {why}"[:300]
        subs.settle(sub.id, item.avid)


def run_due(subs: Subscriptions, run_one: Callable[[Subscription], CheckRecord], *,
            interval_s: float, jitter: float, lock_ttl_ms: int, now: float | None = None,
            rng: random.Random | None = None) -> list[CheckRecord]:
    """Check every due subscription this worker can lock; one worker per subscription at a time.

    After the lock, the subscription must still be due (a peer may have just checked it and
    moved its next check); the next check is set before the lock is let go.
    """
    out = []
    for sub_id in subs.due(now):
        token = subs.lock(sub_id, lock_ttl_ms)
        if token is None:
            continue
        try:
            sub = subs.get(sub_id)
            if sub is None or not subs.is_due(sub_id, now):
                continue
            try:
                out.append(run_one(sub))
            except Exception:  # one broken subscription must not stop the others
                log.exception("subscription %s: check failed", sub_id)
            finally:
                every = sub.interval_s or interval_s
                subs.reschedule(sub_id, next_due(time.time(), every, jitter, rng))
        finally:
            subs.unlock(sub_id, token)
    return out
