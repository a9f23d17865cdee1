"""Choosing an edition across the sources (``download.editions``, see :mod:`pipeline.editions`).

A source's :meth:`~sources.base.VideoSource.resolve` already gives the most preferred
edition *it* has. Across sources the preference wins over the weight: when the first source
that has the title (found by weight, with source health, as before) has a less preferred
edition, the sources that have pages for a more preferred one are asked for it too, by
weight, until the most preferred edition is found or none is left to ask. A source that has
no page for a better edition (most have the regular release only) is not asked at all.

Every source asked leaves an *offer*: ``{"source", "asked", "offered", "outcome"}`` with the
editions named as the config names them (``C``, ``regular``); the resolve event carries them.
"""

from __future__ import annotations

from typing import Any, Collection, Sequence

from pipeline.avid import Avid
from pipeline.editions import better, label, rank
from pipeline.errors import (AllSourcesFailed, EditionNotFound, SourceBlockedByUser, SourceError, SourceNotFound,
                             SourceSkipped)
from pipeline.source_health import SourceHealth
from sources.base import Found, VideoSource
from sources.registry import resolve_with_health

__all__ = ["resolve_editions", "resolve_asked", "seek_better", "offer"]


def offer(source: str, asked: Sequence[str], found: Found | None = None,
          error: SourceError | None = None) -> dict[str, Any]:
    """What one source was asked and what it answered, as the events carry it."""
    return {"source": source, "asked": [label(e) for e in asked],
            "offered": [label(found.edition)] if found else [],
            "outcome": "found" if found else (error.outcome if error else "not asked")}


def resolve_editions(avid: Avid, sources: list[VideoSource], health: SourceHealth, wanted: Sequence[str], *,
                     prefer: str = "", blocked: Collection[str] = ()
                     ) -> tuple[Found, list[SourceError], list[dict[str, Any]]]:
    """The most preferred edition of ``avid`` that a source has.

    Parameters:
        wanted: acceptable editions, most preferred first (:func:`pipeline.editions.preference`).
        prefer: a source the user named: it is asked first and its edition is taken as it
            is (the user's choice of source beats the edition preference).
        blocked: sources the user blocked for this AVID: never asked, for any edition.
    Returns:
        The :class:`Found`, the outcomes of the sources asked before the first one that had it
        (as :func:`sources.registry.resolve_with_health`), and one offer per source asked.
    Raises:
        AllSourcesFailed: no source has any acceptable edition.
    """
    # A source without a page for any acceptable edition is not asked (nor its health touched).
    usable = [s for s in sources if set(s.editions) & set(wanted)]
    if not usable:
        raise AllSourcesFailed(avid.code, [SourceNotFound(s.name, avid.code, detail=(
            f"has pages for {', '.join(label(e) for e in s.editions)} only, none of download.editions"))
            for s in sources])
    found, outcomes = resolve_with_health(avid, usable, health, prefer=prefer, blocked=blocked)
    # A skipped source (in back-off, or blocked by the user) was asked nothing.
    offers = [offer(o.source, [] if isinstance(o, SourceSkipped) else
                    [e for e in wanted if e in _editions_of(sources, o.source)], error=o) for o in outcomes]
    first = next(s for s in sources if s.name == found.source)
    offers.append(offer(found.source, [e for e in wanted if e in first.editions], found))
    if prefer or rank(found.edition, wanted) == 0:
        return found, outcomes, offers
    asked_already = {o.source for o in outcomes} | {found.source}
    others = [s for s in sources if s.name not in asked_already]
    better_found, more = seek_better(avid, others, health, wanted, than=found.edition, blocked=blocked)
    return better_found or found, outcomes, offers + more


def resolve_asked(avid: Avid, sources: list[VideoSource], health: SourceHealth, edition: str, *,
                  prefer: str = "", blocked: Collection[str] = ()
                  ) -> tuple[Found, list[SourceError], list[dict[str, Any]]]:
    """``avid`` in the one ``edition`` the user asked for (``ABC-123-C``), whatever
    ``download.editions`` says: the sources with pages for it, by weight (``prefer`` first),
    skipping those in back-off (unless all are) and those in ``blocked``.

    A "not found" is about one edition, not the site's health (as in :func:`seek_better`).

    Returns:
        As :func:`resolve_editions`.
    Raises:
        EditionNotFound: no source has that edition (no other edition is taken instead).
    """
    ordered = sorted(sources, key=lambda s: s.name != prefer)  # stable: weight order stays
    outcomes: list[SourceError] = [SourceBlockedByUser(s.name, avid.code, detail="not asked for this title")
                                   for s in ordered if s.name in blocked]
    able = [s for s in ordered if s.name not in blocked and edition in s.editions]
    without = [SourceNotFound(s.name, avid.code, detail=f"has no pages for the {label(edition)} edition")
               for s in ordered if s.name not in blocked and edition not in s.editions]
    resting = health.in_backoff(s.name for s in able)
    if len(resting) == len(able):
        resting = set()  # all sidelined: asking beats failing without trying
    offers: list[dict[str, Any]] = []
    for src in able:
        if src.name in resting:
            outcomes.append(SourceSkipped(src.name, avid.code, detail="in back-off, not asked"))
            offers.append(offer(src.name, [], error=outcomes[-1]))
            continue
        try:
            got = src.resolve(avid, [edition])
        except SourceError as e:
            if not isinstance(e, SourceNotFound):
                health.record(e.source, e.outcome, e.detail)
            outcomes.append(e)
            offers.append(offer(src.name, [edition], error=e))
            continue
        health.record(src.name, "found")
        offers.append(offer(src.name, [edition], got))
        return got, outcomes, offers
    raise EditionNotFound(avid.code, label(edition), [*outcomes, *without])


def seek_better(avid: Avid, sources: list[VideoSource], health: SourceHealth, wanted: Sequence[str], *,
                than: str | None, blocked: Collection[str] = ()) -> tuple[Found | None, list[dict[str, Any]]]:
    """Ask ``sources`` (by weight, skipping those in back-off and those in ``blocked``) for an
    edition preferred to ``than`` (None: any acceptable one); stop at the most preferred one.

    A "not found" here is about one edition, not the site's health, so only other outcomes
    (blocked, upstream error, layout changed) and finds are recorded in ``health``.

    Returns:
        The best :class:`Found` (None when no source has a better edition) and one offer
        per source asked.
    """
    best: Found | None = None
    offers: list[dict[str, Any]] = []
    resting = health.in_backoff(s.name for s in sources)
    for src in sources:
        target = best.edition if best else than
        asked = [e for e in wanted if e in src.editions and better(e, target, wanted)]
        if not asked or src.name in resting or src.name in blocked:
            continue
        try:
            got = src.resolve(avid, asked)
        except SourceError as e:
            if not isinstance(e, SourceNotFound):
                health.record(e.source, e.outcome, e.detail)
            offers.append(offer(src.name, asked, error=e))
            continue
        health.record(src.name, "found")
        offers.append(offer(src.name, asked, got))
        best = got
        if rank(got.edition, wanted) == 0:
            break
    return best, offers


def _editions_of(sources: list[VideoSource], name: str) -> tuple[str, ...]:
    return next((s.editions for s in sources if s.name == name), ())
