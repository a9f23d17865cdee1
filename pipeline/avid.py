"""The AVID value object: normalisation, editions and validation.

An AVID is validated here before anything builds a path from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import InvalidAvid

MAX_LEN = 30

_FC2 = re.compile(r"^FC2[-_ ]*(?:PPV[-_ ]*)?(\d{5,9})$")
# Body of a normal code: prefix letters/digits, then digits, optional trailing letter.
_CODE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*-\d+[A-Z]?$")
# Editions are separated by a hyphen: "ABC-123-C"; "ABC-123C" is a code of its own shape.
_EDITION = re.compile(r"^(.*\d)-(C|UC|U|CD\d{1,2})$")
_SQUASHED = re.compile(r"^([A-Z]+)(\d+)([A-Z]?)$")
_ALLOWED = re.compile(r"^[A-Z0-9 _\-.]+$")


@dataclass(frozen=True, slots=True)
class Avid:
    """A normalised product code plus an optional edition (``C``, ``U``, ``UC``, ``CD1``…)."""

    code: str
    edition: str = ""

    def __str__(self) -> str:
        return self.code

    @property
    def full(self) -> str:
        """The code with its edition suffix, as a user would write it."""
        return f"{self.code}-{self.edition}" if self.edition else self.code

    @property
    def lower(self) -> str:
        return self.code.lower()

    @property
    def is_fc2(self) -> bool:
        return self.code.startswith("FC2-PPV-")


def parse(text: object) -> Avid:
    """Normalise and validate ``text``; raise :class:`InvalidAvid` naming the accepted forms."""
    if not isinstance(text, str):
        raise InvalidAvid(text, "not a string")
    raw = text.strip()
    if not raw:
        raise InvalidAvid(text, "empty")
    # Before upper(): Unicode case mapping turns look-alikes into ASCII ("ſ" → "S", "ı" → "I").
    if not raw.isascii():
        raise InvalidAvid(text, "only ASCII letters, digits and hyphens are allowed")
    raw = raw.upper()
    if len(raw) > MAX_LEN:
        raise InvalidAvid(text, f"too long ({len(raw)} characters)")
    if not _ALLOWED.match(raw):
        raise InvalidAvid(text, "only letters, digits and hyphens are allowed")
    unified = re.sub(r"[ _.]+", "-", raw)
    unified = re.sub(r"-{2,}", "-", unified).strip("-")

    fc2 = _FC2.match(unified)
    if fc2:
        return _checked(Avid(f"FC2-PPV-{fc2.group(1)}"), text)

    edition = ""
    m = _EDITION.match(unified)
    if m:
        unified, edition = m.group(1), m.group(2)

    unified = _squash_fix(unified)
    if not _CODE.match(unified):
        raise InvalidAvid(text)
    return _checked(Avid(unified, edition), text)


def _squash_fix(code: str) -> str:
    """``ABC123`` → ``ABC-123``; codes with separators are left as they are."""
    m = _SQUASHED.match(code)
    if m:
        return f"{m.group(1)}-{m.group(2)}{m.group(3)}"
    return code


def _checked(avid: Avid, text: object) -> Avid:
    if len(avid.full) > MAX_LEN:
        raise InvalidAvid(text, "too long")
    return avid
