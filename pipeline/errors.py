"""The one error tree of nassav.

    NassavError
    ├── ConfigError                 bad config file / key / type (start-up stops)
    ├── InvalidAvid                 input that is not an AVID (HTTP 400)
    ├── OtherEdition                the library holds another edition of the code
    ├── Retriable                   worth another try later (actors retry these)
    │   ├── UpstreamError           5xx, timeout, connection reset
    │   ├── SourceBlocked           403/429/451 or a challenge page (pipeline/status.py)
    │   ├── SegmentFailed           an HLS segment failed every retry
    │   └── MutexLost               the download mutex expired under us
    └── Permanent                   retrying will not help
        ├── SourceNotFound          the site does not have the AVID
        ├── LayoutChanged           page fetched, landmark missing
        ├── PlaylistError           live / empty / unsupported playlist
        ├── VerifyFailed            output failed a check before rename
        ├── NothingToUpgrade        an upgrade job for a title without a video
        ├── UnsafeURL               a URL points somewhere forbidden (scheme, name, address class)
        │   ├── NonPublicAddress    its host is loopback/private/…: allowed only with private URLs on
        │   └── UnresolvableHost    its host does not resolve: refused, never handed to curl
        └── AllSourcesFailed        every source gave a non-found outcome
    SourceSkipped (a SourceError)   a note: the source was not asked (back-off); not raised
    └── SourceBlockedByUser         not asked: the user blocked it for this AVID
    TranslationError                the translator is down, slow or answered garbage (a warning)

HTTP errors are converted where they enter: ``pipeline/http.py`` turns curl_cffi's into
``UpstreamError``, the HLS fetcher into retries and then ``SegmentFailed``. Redis errors are
not converted: redis-py's ``RedisError`` tree passes through unchanged, and the two places
that meet it decide by its type (the gateway answers 503 "Redis is unreachable",
``gateway/app.py``; a stage that loses Redis waits for it and runs again, ``actors/registry.py``).
Each exception carries what a user needs to act, and ``str()`` says it in one line.
"""

from __future__ import annotations


class NassavError(Exception):
    """Root of every error nassav raises on purpose."""


class ConfigError(NassavError):
    """The configuration is wrong; the message names the key and what is expected."""

    def __init__(self, key: str, expected: str, got: object = None):
        self.key, self.expected, self.got = key, expected, got
        detail = f" (got {got!r})" if got is not None else ""
        super().__init__(f"config: {key}: expected {expected}{detail}")


class InvalidAvid(NassavError, ValueError):
    """The text is not an AVID in an accepted form."""

    ACCEPTED = (
        "accepted forms: LETTERS-DIGITS such as ABC-123 (optionally with an edition "
        "suffix -C, -U, -UC or -CD1), or FC2-PPV-123456; letters, digits and hyphens "
        "only, at most 30 characters"
    )

    def __init__(self, text: object, reason: str = "not an AVID"):
        self.text = text
        self.reason = reason
        shown = repr(text)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"invalid AVID {shown}: {reason}; {self.ACCEPTED}")


class OtherEdition(NassavError):
    """A request names an edition (``ABC-123-C``, or none) that the code's folder does not hold.

    ``held`` is the AVID as the folder holds it (``ABC-123``, ``ABC-123-U``), or None when its
    metadata is unreadable and so its edition is unknown."""

    def __init__(self, asked: str, code: str, held: str | None):
        self.asked, self.code, self.held = asked, code, held
        what = f"holds {held}" if held else "has no readable metadata, so its edition is unknown"
        super().__init__(f"{asked} is not in the library: the folder {code} {what}")


class InPlaceOriginal(NassavError):
    """A delete would remove a video imported in place: the user's own file where it lies,
    outside the data dir, not a copy nassav made. ``files`` are their full paths."""

    def __init__(self, avid: str, files: list[str]):
        self.avid, self.files = avid, files
        super().__init__(f"the video of {avid} is your original file at {', '.join(files)} (imported in place, "
                         f"not a copy): deleting it removes it from your disk")


class Retriable(NassavError):
    """An error that may go away on its own; actors retry it with back-off."""


class Permanent(NassavError):
    """An error that retrying will not fix."""


class SourceError(NassavError):
    """Base of the per-source outcomes that are not 'found'."""

    outcome = "error"

    def __init__(self, source: str, avid: str = "", detail: str = "", status: int | None = None):
        self.source, self.avid, self.detail, self.status = source, avid, detail, status
        parts = [f"{source}: {self.outcome}"]
        extra = ", ".join(p for p in (f"HTTP {status}" if status else "", detail) if p)
        if extra:
            parts.append(f"({extra})")
        super().__init__(" ".join(parts))


class UpstreamError(SourceError, Retriable):
    outcome = "upstream error"


class SourceBlocked(SourceError, Retriable):
    outcome = "blocked"


class SourceNotFound(SourceError, Permanent):
    outcome = "not found"


class LayoutChanged(SourceError, Permanent):
    outcome = "layout changed"


class SourceSkipped(SourceError):
    """Not an outcome of asking: the source was deliberately not asked (e.g. in back-off)."""

    outcome = "skipped"


class SourceBlockedByUser(SourceSkipped):
    """Not asked: the user blocked this source for this AVID (``pipeline/blocklist.py``)."""

    outcome = "blocked by the user"


class AllSourcesFailed(Permanent):
    """Every enabled source failed; ``outcomes`` holds one error per source."""

    def __init__(self, avid: str, outcomes: list[NassavError]):
        self.avid, self.outcomes = avid, outcomes
        lines = "; ".join(str(o) for o in outcomes) or "no source enabled"
        super().__init__(f"{avid}: no source has it: {lines}")


class EditionNotFound(AllSourcesFailed):
    """The user asked for one edition (``ABC-123-C``) and no source has it: the job fails
    rather than fetch another edition; ``hint`` says how to take the configured preference."""

    def __init__(self, avid: str, edition: str, outcomes: list[NassavError]):
        super().__init__(avid, outcomes)
        self.edition = edition
        self.hint = (f"no source has the {edition} edition of {avid} (asked for {avid}-{edition}); "
                     f"submit {avid} to take the first edition in download.editions that a source has")
        self.args = (f"{self.hint}: " + ("; ".join(str(o) for o in outcomes) or "no source enabled"),)


class PlaylistError(Permanent):
    """The playlist cannot be downloaded as a VOD (live, empty, unsupported)."""


class SegmentFailed(Retriable):
    """One segment failed every retry; names it so the user sees which."""

    def __init__(self, index: int, url: str, reason: str):
        self.index, self.url, self.reason = index, url, reason
        super().__init__(f"segment {index} failed every retry: {reason} ({url})")


class VerifyFailed(Permanent):
    """The download finished but a check failed; the part directory is kept."""


class MutexLost(Retriable):
    """The download mutex could not be renewed; another worker may hold it."""


class UnsafeURL(Permanent):
    """A URL is not http(s), is written in a forbidden form, or points to a forbidden address."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"refusing URL {url[:120]!r}: {reason}")


class NonPublicAddress(UnsafeURL):
    """The URL is well formed but its host is (or resolves to) a loopback, private or other
    non-public address: allowed only where private URLs are turned on (``--allow-private``,
    ``http.allow_private_urls``), which callers may tell the user."""


class UnresolvableHost(UnsafeURL):
    """The URL's host has no address. Refused like an unsafe URL (nothing is connected to),
    but callers may treat it as a network failure: DNS can come back."""

    def __init__(self, url: str, host: str, detail: str):
        self.host = host
        super().__init__(url, f"host {host} does not resolve ({detail})")


class Cancelled(Permanent):
    """The job was cancelled by the user."""


class TranslationError(NassavError):
    """The translator gave no usable translation (down, slow, an error status, garbage).

    Never fails a job: the stage leaves the field untranslated and says so in a warning; the
    next scrape of the title (a ``refresh``) asks again."""

    def __init__(self, endpoint: str, reason: str):
        self.endpoint, self.reason = endpoint, reason
        super().__init__(f"translator at {endpoint}: {reason}")


class NothingToUpgrade(Permanent):
    """An edition upgrade was asked for a title whose folder holds no video."""

    def __init__(self, avid: str):
        self.avid = avid
        super().__init__(f"{avid} has no video to upgrade; download it first (POST /api/downloads/{avid})")
