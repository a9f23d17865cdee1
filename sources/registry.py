"""Which adapter serves which configured site, and the fall-through over them.

``build_sources`` / ``build_catalogues`` turn the config into adapters, best first;
``resolve_any`` and ``scrape_any`` ask them in that order and keep every other outcome,
so a failure can say, per site, why nothing was found. ``resolve_with_health`` is the resolve
step of the pipeline: it skips sources in back-off and records every outcome in the shared
source health (:mod:`pipeline.source_health`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Collection, Mapping

from pipeline.avid import Avid, parse
from pipeline.config import Config
from pipeline.editions import preference
from pipeline.errors import (AllSourcesFailed, ConfigError, SourceBlockedByUser, SourceError, SourceNotFound,
                             SourceSkipped)
from pipeline.http import Pacer
from pipeline.source_health import SourceHealth
from sources.avtoday import AvToday
from sources.base import CatalogueEntry, Found, VideoSource
from sources.ggjav import GGJav
from sources.hohoj import HohoJ
from sources.jable import Jable
from sources.javbus import JavBusScraper
from sources.kanav import KanAV
from sources.memo import Memo
from sources.missav import MissAV
from sources.netflav import NetFlav

__all__ = ["SOURCE_CLASSES", "build_sources", "build_catalogues", "resolve_any", "resolve_with_health",
           "source_record", "scrape_any"]

SOURCE_CLASSES: dict[str, type[VideoSource]] = {
    cls.name: cls for cls in (MissAV, Jable, Memo, HohoJ, KanAV, GGJav, NetFlav, AvToday)
}


def build_sources(config: Config, *, pacer: Pacer | None = None,
                  cookies: Mapping[str, Mapping[str, str]] | None = None) -> list[VideoSource]:
    """The active video sources, highest weight first.

    Raises:
        ConfigError: ``config.sources`` names a site no adapter serves (even a disabled one).
    """
    for name in config.sources:
        if name not in SOURCE_CLASSES:
            raise ConfigError(f"sources.{name}", f"one of {', '.join(SOURCE_CLASSES)} (unknown source)")
    pacer = pacer if pacer is not None else Pacer()
    cookies = cookies or {}
    wanted = preference(config.download.editions)
    return [SOURCE_CLASSES[name](cfg, config.http, pacer=pacer, cookies=cookies.get(name), wanted=wanted)
            for name, cfg in config.sources_by_weight()]


def build_catalogues(config: Config, *, pacer: Pacer | None = None,
                     cookies: Mapping[str, Mapping[str, str]] | None = None) -> list[JavBusScraper]:
    """The active catalogue sites (all JavBus-layout mirrors), highest weight first."""
    pacer = pacer if pacer is not None else Pacer()
    cookies = cookies or {}
    return [JavBusScraper(cfg, config.http, pacer=pacer, cookies=cookies.get(name), name=name)
            for name, cfg in config.catalogues_by_weight()]


def resolve_any(avid: Avid | str, sources: list[VideoSource], *,
                skip: Collection[str] = ()) -> tuple[Found, list[SourceError]]:
    """Ask ``sources`` in order; the first that has ``avid`` wins.

    Parameters:
        skip: names of sources not to ask now (e.g. in back-off); each is noted as skipped.
    Returns:
        The :class:`Found` and the outcome of every source asked or skipped before it.
    Raises:
        AllSourcesFailed: no source has it; ``outcomes`` holds one error per source.
    """
    avid = parse(avid) if isinstance(avid, str) else avid
    outcomes: list[SourceError] = []
    for src in sources:
        if src.name in skip:
            outcomes.append(SourceSkipped(src.name, avid.code, detail="in back-off, not asked"))
            continue
        try:
            return src.resolve(avid), outcomes
        except SourceError as e:
            outcomes.append(e)
    raise AllSourcesFailed(avid.code, list(outcomes))


def resolve_with_health(avid: Avid, sources: list[VideoSource], health: SourceHealth, *,
                        prefer: str = "", blocked: Collection[str] = ()) -> tuple[Found, list[SourceError]]:
    """Ask ``sources`` by weight (``prefer`` first, when the user named one), skipping those
    in back-off (unless all are), and record each outcome in ``health``. Sources in
    ``blocked`` (the user's blocklist for this AVID) are never asked; their outcome is
    "blocked by the user", which says nothing of the site's health and is not recorded.

    Returns:
        As :func:`resolve_any`.
    Raises:
        AllSourcesFailed: as :func:`resolve_any`, after recording every outcome.
    """
    sources = sorted(sources, key=lambda s: s.name != prefer)  # stable: weight order stays
    by_user: list[SourceError] = [SourceBlockedByUser(s.name, avid.code, detail="not asked for this title")
                                  for s in sources if s.name in blocked]
    sources = [s for s in sources if s.name not in blocked]
    skip = health.in_backoff(s.name for s in sources)
    if len(skip) == len(sources):
        skip = set()  # all sidelined: asking beats failing without trying
    try:
        found, outcomes = resolve_any(avid, sources, skip=skip)
    except AllSourcesFailed as e:
        for o in e.outcomes:
            health.record(o.source, o.outcome, o.detail)
        raise AllSourcesFailed(avid.code, by_user + list(e.outcomes)) from None
    for o in outcomes:
        health.record(o.source, o.outcome, o.detail)
    health.record(found.source, "found")
    return found, by_user + outcomes


def source_record(found: Found, *, now: float | None = None) -> dict[str, Any]:
    """``found`` as the metadata JSON keeps it (``source``): its fields, ``name`` and ``resolved_at``."""
    rec = dataclasses.asdict(found)
    rec["name"] = rec.pop("source")
    rec["resolved_at"] = time.time() if now is None else now
    return rec


def scrape_any(avid: Avid | str, catalogues: list[JavBusScraper]) -> tuple[CatalogueEntry | None,
                                                                             list[SourceError]]:
    """Ask the catalogues in order; the first valid entry wins, every failure is a warning."""
    avid = parse(avid) if isinstance(avid, str) else avid
    warnings: list[SourceError] = []
    for cat in catalogues:
        try:
            return cat.scrape(avid), warnings
        except SourceNotFound as e:
            warnings.append(e)
            if avid.is_fc2:
                break  # the mirrors share one inventory: one "no catalogue entry" says it
        except SourceError as e:
            warnings.append(e)
    return None, warnings
