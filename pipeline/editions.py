"""Editions of a title and the user's preference among them.

A title may exist in several editions on the sites (FIELD_NOTES §1, §3): ``C`` (Chinese
subtitles), ``UC`` (uncensored, with subtitles), ``U`` (uncensored / leak) and the regular
release. ``download.editions`` lists the acceptable ones, most preferred first, e.g.
``[C, UC, regular]``; an edition not in the list is never chosen.

Inside nassav an edition is its suffix code, the regular release being ``""`` (as
:class:`pipeline.avid.Avid` and the metadata JSON's ``edition`` have it); the config and the
events spell the regular release ``regular`` (:func:`label`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from pipeline.errors import ConfigError

__all__ = ["REGULAR", "KNOWN", "DEFAULT", "NAMES", "FORM", "label", "preference", "rank", "better", "check"]

REGULAR = ""
# Every edition code a source may offer, and its spelling in the config and the events.
KNOWN = {"C": "C", "UC": "UC", "U": "U", "REGULAR": REGULAR}
# download.editions' default, as codes: the subtitled release when a site has it, else the regular one.
DEFAULT = ("C", REGULAR)
FORM = "a non-empty list of C, UC, U and regular, most preferred first, each at most once"


# What a media server shows (the NFO's <edition> and a <tag>); the regular release shows nothing.
NAMES = {"C": "Chinese subtitles", "UC": "Uncensored, Chinese subtitles", "U": "Uncensored"}


def label(edition: str) -> str:
    """``"C"`` → ``"C"``; ``""`` → ``"regular"`` (how the config and the events name it)."""
    return edition or "regular"


def preference(names: Iterable[str]) -> tuple[str, ...]:
    """The config's list as edition codes, most preferred first.

    Raises:
        ConfigError: ``download.editions`` is not :data:`FORM`.
    """
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for name in names:
        code = KNOWN.get(str(name).strip().upper()) if isinstance(name, str) else None
        if code is None or code in out:
            raise ConfigError("download.editions", FORM, list(names))
        out.append(code)
    if not out:
        raise ConfigError("download.editions", FORM, [])
    return tuple(out)


def check(names: Iterable[str]) -> None:
    """Validate ``download.editions`` (see :func:`preference`)."""
    preference(names)


def rank(edition: str, prefs: Sequence[str]) -> int | None:
    """Where ``edition`` stands in ``prefs`` (0 = most preferred); None when not acceptable."""
    try:
        return list(prefs).index(edition)
    except ValueError:
        return None


def better(edition: str, than: str | None, prefs: Sequence[str]) -> bool:
    """Is ``edition`` acceptable and preferred to ``than`` (None: nothing held yet)?

    An edition the preference list does not name (held before the list changed) is beaten
    by any acceptable one."""
    r = rank(edition, prefs)
    if r is None:
        return False
    if than is None:
        return True
    held = rank(than, prefs)
    return held is None or r < held
