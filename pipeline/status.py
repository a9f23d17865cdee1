"""What an HTTP answer means, decided once for every caller (site adapters, cookie
fetching, source probes, the HLS engine's playlists).

    2xx, not a challenge page ................ None (usable)
    challenge page (any status), 403, 451, 429  SourceBlocked   (retriable)
    404, 410 ................................. SourceNotFound  (permanent)
    anything else (5xx, other 4xx, 3xx) ...... UpstreamError   (retriable)

429 is "blocked": a rate limit is the site refusing us for now, and its cure is the one a
ban's is — stop asking that host for a while (source back-off, a stage retry later), not
hammer it again at once. 404/410 is "not found": the server answered and has no such page.
What "not found" means to a caller is the caller's to say: for a site it is the healthy
"lacks this title"; for a playlist URL handed out by a page it is an expired token.
"""

from __future__ import annotations

from pipeline.errors import SourceBlocked, SourceError, SourceNotFound, UpstreamError

__all__ = ["BLOCKED_STATUSES", "NOT_FOUND_STATUSES", "status_error"]

BLOCKED_STATUSES = frozenset({403, 429, 451})
NOT_FOUND_STATUSES = frozenset({404, 410})


def status_error(status: int, *, is_challenge: bool = False) -> type[SourceError] | None:
    """The outcome a response stands for: None when usable, else the error class to raise.

    The class's ``outcome`` (``"blocked"``, ``"not found"``, ``"upstream error"``) is the
    word source health records.
    """
    if is_challenge or status in BLOCKED_STATUSES:
        return SourceBlocked
    if status in NOT_FOUND_STATUSES:
        return SourceNotFound
    if not 200 <= status < 300:
        return UpstreamError
    return None
