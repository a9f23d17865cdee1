"""Find the AVID in the messy file names of a user's collection.

Pure text work for ``nassav import``: no file system access. The product code found is
validated and normalised by :func:`pipeline.avid.parse`; this module only cuts the name down to
the candidate code and reads the part (``cd1``, ``-A``, ``part1``) and edition (``-C``, ``ch``,
``-UC``, ``-U``) written after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from pipeline.avid import Avid, parse
from pipeline.errors import InvalidAvid

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".mkv", ".avi", ".wmv", ".ts", ".m4v", ".mov", ".flv", ".webm", ".mpg", ".mpeg",
    ".m2ts", ".mts", ".rmvb", ".rm", ".asf", ".vob", ".iso", ".3gp", ".f4v", ".divx",
})

_NO_CODE = "no product code (such as ABC-123 or FC2-PPV-1234567) found in the name"


@dataclass(frozen=True, slots=True)
class Identified:
    """A name whose AVID was found; ``part`` is 1-based (``cd2``/``-B``/``part2`` → 2)."""

    avid: Avid
    part: int | None = None

    @property
    def edition(self) -> str:
        return self.avid.edition


@dataclass(frozen=True, slots=True)
class Unidentified:
    """A name without exactly one AVID; ``reason`` says why, for the import's report."""

    name: str
    reason: str


def is_video(path: str | PurePath) -> bool:
    """True when the file's extension is a video container the import handles."""
    return PurePath(path).suffix.lower() in VIDEO_EXTENSIONS


# Junk removed before looking for codes: each of these contains letters next to digits and
# would otherwise read as a code ("x264" → X-264, "hhd800.com" → HHD-800). Dates need no
# removal: digits without letters never read as a code.
_DOMAIN = re.compile(
    # The look-behind starts matches at label boundaries only: linear on "xxxx…" names.
    r"(?<![A-Z0-9.])(?:WWW\.)?[A-Z0-9]+(?:\.[A-Z0-9]+)*\.(?:COM|NET|ORG|TV|CC|ME|XYZ|INFO|IO|CO"
    r"|TOP|VIP|CLUB|LA|JP|CN|TW|RU|TO|LINK|SITE|LIFE|FUN|LIVE|APP|PRO|ONE|WS|BIZ|CLICK|MOBI"
    r"|WIN)(?![A-Z0-9])")
_JUNK = re.compile(
    r"(?<![A-Z0-9])(?:\d{3,4}[PI]|[248]K|X\.?26[45]|H\.?26[45]|HEVC|AVC|AAC\d?|AC3|DTS|FLAC"
    r"|[FU]?HD|SD|HDR\d*|\d{2,3}FPS|1?[08]BIT|WEB-?DL|WEB-?RIP|BLU-?RAY|BD-?RIP|DVD-?RIP"
    r"|DVD\d?|MP4|MKV|AVI"
    # Camera and phone file names ("IMG_2023.mp4") are not product codes.
    r"|(?:IMG|DSCN?|VID|MVI|PXL|GOPR|DJI)[-_ ]?\d+)(?![A-Z0-9])")
_NOT_CODE = re.compile(r"[^A-Z0-9_\- .]+")  # brackets, @, non-ASCII like [中文字幕]

# Codes, tried in this order at each position. Separators are "-", "_", " " and ".".
_CODE = re.compile(
    r"(?<![A-Z0-9])(?:"
    r"(?P<fc2>FC2[-_ .]*(?:PPV[-_ .]*)?(?P<fc2n>\d{5,9}))"
    # DMM content id: "h_123abc00045", "1abc123", "abc00123", or squashed "ABC123".
    r"|(?:H_)?\d{0,4}(?P<sq>[A-Z]{2,8})(?P<sqn>\d{2,5})"
    # "ABC-123", "259LUXU-1234", "abc_123", "abc 123".
    r"|(?P<pre>\d{2,3}[A-Z]{2,8}|[A-Z]{2,8})[-_ .]+(?P<num>\d{2,5})"
    r")(?!\d)")

_SEP = r"[-_ .]*"
_PART = re.compile(_SEP + r"(?:CD|PART|PT|DISC|DISK)[-_ .]?(\d{1,2})(?![0-9])")
_EDITION = re.compile(_SEP + r"(UC|U|CH|C)(?![A-Z0-9])")
_LETTER_PART = re.compile(r"[-_ .]*([A-H])(?![A-Z0-9])")
_DIGIT_PART = re.compile(r"[-_ .]+([1-9])(?![A-Z0-9])")


def identify(name: str) -> Identified | Unidentified:
    """The AVID, part and edition in a file name (a path's directories are ignored)."""
    base = PurePath(name.replace("\\", "/")).name
    if PurePath(base).suffix.lower() in VIDEO_EXTENSIONS:
        base = base[: -len(PurePath(base).suffix)]
    text = _clean(base)

    found: dict[str, Identified] = {}
    tail_end = 0
    for m in _CODE.finditer(text):
        if m.start() < tail_end:  # "CD10" after "ABC-123-" is the part, not a code
            continue
        hit, tail_end = _candidate(m, text)
        if hit is None:
            continue
        prior = found.get(hit.avid.code)
        found[hit.avid.code] = _merge(prior, hit) if prior else hit
    if not found:
        return Unidentified(name, _NO_CODE)
    if len(found) > 1:
        codes = " and ".join(found)
        return Unidentified(name, f"ambiguous: the name holds different codes {codes}")
    return next(iter(found.values()))


def _clean(base: str) -> str:
    """Upper-case, with junk tokens and non-code characters turned into spaces."""
    text = base.upper()
    text = _NOT_CODE.sub(" ", text)
    for junk in (_DOMAIN, _JUNK):
        text = junk.sub(" ", text)
    return text


def _candidate(m: re.Match[str], text: str) -> tuple[Identified | None, int]:
    """The match as a parsed AVID (None when not a valid code) and where its tail ends."""
    if m.group("fc2"):
        code = f"FC2-PPV-{m.group('fc2n')}"
    elif m.group("sq"):
        code = f"{m.group('sq')}-{_unpad(m.group('sqn'))}"
    else:
        code = f"{m.group('pre')}-{m.group('num')}"
    edition, part, end = _tail(text, m.end())
    try:
        avid = parse(f"{code}-{edition}" if edition else code)
    except InvalidAvid:
        return None, m.end()
    return Identified(avid, part), end


def _unpad(number: str) -> str:
    """DMM pads numbers to five digits ("00123"); the product code has three ("123")."""
    if len(number) >= 5 and number.startswith("0"):
        return f"{int(number):03d}"
    return number


def _tail(text: str, pos: int) -> tuple[str, int | None, int]:
    """Edition and part written right after the code, in either order, and where they end."""
    edition, part = "", None
    for _ in range(2):
        if part is None and (m := _PART.match(text, pos)):
            part, pos = int(m.group(1)), m.end()
        elif not edition and (m := _EDITION.match(text, pos)):
            edition, pos = ("C" if m.group(1) == "CH" else m.group(1)), m.end()
        elif part is None and (m := _LETTER_PART.match(text, pos)):
            part, pos = ord(m.group(1)) - ord("A") + 1, m.end()
        elif part is None and (m := _DIGIT_PART.match(text, pos)):
            part, pos = int(m.group(1)), m.end()
        else:
            break
    return edition, part, pos


def _merge(a: Identified, b: Identified) -> Identified:
    """The same code written twice ("[ABC-123] abc-123-C"): keep what either one says."""
    avid = a.avid if a.avid.edition else b.avid
    return Identified(avid, a.part if a.part is not None else b.part)
