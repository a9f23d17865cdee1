"""Typed outcomes and the adapter base shared by every site module.

A site adapter is a :class:`Site` subclass with pure ``parse_...(html, ...)`` functions beside it
and a ``_resolve`` (video sources) or ``_scrape`` (catalogues) that fetches pages and calls them.
The base decides what a fetched page means, with the one status classifier
(``pipeline.status.status_error``) for the HTTP status:

    network failure, timeout, 5xx, other non-2xx  UpstreamError   (retriable)
    challenge page (any status), 403, 451, 429 .. SourceBlocked   (retriable)
    404, 410 .................................... SourceNotFound  (permanent)
    page fetched but its landmark missing ....... LayoutChanged   (permanent)

and it turns a stray ``KeyError``/``IndexError``/… raised while parsing into ``LayoutChanged``
naming the site and the AVID, as yt-dlp's ``extract()`` does.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar
from urllib.parse import urljoin, urlsplit

from pipeline.avid import Avid
from pipeline.config import HttpConfig, SourceConfig
from pipeline.editions import DEFAULT as DEFAULT_EDITIONS, REGULAR, label
from pipeline.errors import (LayoutChanged, SourceError, SourceNotFound,
                             UnresolvableHost, UnsafeURL, UpstreamError)
from pipeline.http import HttpClient, Pacer, Response, check_url
from pipeline.status import status_error

__all__ = ["Found", "Actor", "CatalogueEntry", "Site", "VideoSource",
           "PARSE_ERRORS", "absolute", "strip_avid", "mentions_avid", "first_result"]

T = TypeVar("T")

# What a parser raises when the page is not shaped as it expects.
PARSE_ERRORS = (KeyError, IndexError, AttributeError, ValueError, TypeError)


@dataclass(frozen=True)
class Found:
    """A source has the AVID: where its page is and which playlist to download."""

    source: str
    avid: str
    page_url: str
    playlist_url: str
    title: str = ""
    cover_url: str = ""
    referer: str = ""  # the Referer the CDN wants
    headers: dict[str, str] = field(default_factory=dict, hash=False)  # extra headers for the CDN
    edition: str = ""  # the page's edition (pipeline/editions.py): "C", "UC", "U"; "" = regular


@dataclass
class Actor:
    name: str
    avatar_url: str = ""


@dataclass
class CatalogueEntry:
    """Catalogue metadata of one AVID (JavBus family)."""

    source: str
    avid: str
    title: str
    release_date: str = ""
    runtime_min: int | None = None
    director: str = ""
    studio: str = ""
    label: str = ""
    series: str = ""
    genres: list[str] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)
    cover_url: str = ""
    samples: list[str] = field(default_factory=list)
    page_url: str = ""


class Site:
    """One configured site: a paced, cookie-carrying HTTP client and page classification.

    Parameters:
        cfg: the site's entry in ``sources`` or ``catalogues`` (base URL, pacing, CDN).
        http: the process-wide HTTP settings (impersonation profile, proxy, timeouts).
        pacer: shared across sites so one process keeps ``cfg.min_interval_s`` per site.
        cookies: sent with every request to this site (e.g. a Cloudflare clearance cookie).
        name: overrides the class's ``name`` (catalogue mirrors share one class).
    """

    name: ClassVar[str] = ""
    extra_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, cfg: SourceConfig, http: HttpConfig, *, pacer: Pacer | None = None,
                 cookies: Mapping[str, str] | None = None, name: str | None = None):
        if name:
            self.name = name  # type: ignore[misc]  # instance override of the class default
        self.cfg = cfg
        self.http = http
        self.base_url = cfg.base_url.rstrip("/")
        self.pacer = pacer if pacer is not None else Pacer()
        self.cookies = dict(cookies or {})
        self._local = threading.local()  # curl handles are not thread-safe: one client per thread
        self._clients: list[HttpClient] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.base_url}>"

    # -- URLs ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """``path`` below the configured base URL (which may carry a path prefix)."""
        return self.base_url + path

    def safe(self, url: str) -> str:
        """Refuse a URL taken from a page unless it is http(s) and allowed by the config
        (``pipeline.urlcheck``: a host that does not resolve is refused too)."""
        return check_url(url, allow_private=self.http.allow_private_urls, via_proxy=bool(self.http.proxy))

    def safe_or_empty(self, url: str) -> str:
        """For optional URLs (covers, stills): an unsafe one is dropped, not fatal."""
        if not url:
            return ""
        try:
            return self.safe(url)
        except UnsafeURL:
            return ""

    # -- fetching -----------------------------------------------------------------------

    @property
    def client(self) -> HttpClient:
        c = getattr(self._local, "client", None)
        if c is None or c not in self._clients:  # none yet on this thread, or closed by close()
            c = HttpClient(self.http, headers=self.extra_headers, cookies=self.cookies,
                           pacer=self.pacer, site=self.name,
                           min_interval_s=self.cfg.min_interval_s)
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def fetch(self, url: str, avid: Avid, *, referer: str | None = None,
              headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url`` and return the response only if it is a usable 2xx page.

        A URL under the configured base URL is trusted as it is; any other (taken from a
        page, which must go through :meth:`safe` first) has every redirect hop checked too.

        Raises:
            UpstreamError: network failure, timeout, 5xx or another unexpected status.
            SourceBlocked: a challenge page (whatever the status), 403, 451 or 429.
            SourceNotFound: 404 or 410.
        """
        try:
            trusted = url == self.base_url or url.startswith(self.base_url + "/")
            r = self.client.get(url, referer=referer, headers=headers, check=not trusted)
        except UpstreamError as e:
            raise UpstreamError(self.name, avid.code, detail=e.detail, status=e.status) from None
        self.classify(r, avid)
        return r

    def classify(self, r: Response, avid: Avid) -> None:
        """Raise the typed outcome that a non-usable response stands for."""
        kind = status_error(r.status, is_challenge=r.is_challenge)
        if kind is not None:
            raise kind(self.name, avid.code, detail="challenge page" if r.is_challenge else "",
                       status=r.status)

    def _guard(self, avid: Avid, step: Callable[[], T]) -> T:
        """Run ``step()``; give every failure the site and AVID, as a typed outcome."""
        try:
            return step()
        except SourceError as e:
            e.avid = e.avid or avid.code
            raise
        except UnresolvableHost as e:
            # DNS may come back: a network failure of this site (retriable, backed off), not a layout change.
            raise UpstreamError(self.name, avid.code, detail=e.reason) from e
        except UnsafeURL as e:
            # A page pointing somewhere we refuse to go is this site's failure, not the pipeline's.
            raise LayoutChanged(self.name, avid.code, detail=f"page gave an unsafe URL: {e.reason}") from e
        except PARSE_ERRORS as e:
            raise LayoutChanged(self.name, avid.code, detail=f"{type(e).__name__}: {e}"[:200]) from e

    def close(self) -> None:
        """Close every thread's HTTP client; the next request opens a fresh one."""
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()


class VideoSource(Site):
    """A site that turns an AVID into an HLS playlist URL.

    ``editions`` are the editions the site has pages for (a site without edition pages
    serves the regular release only); ``wanted`` (from ``download.editions``) the acceptable
    ones, most preferred first. :meth:`resolve` gives the most preferred edition the site has.
    """

    editions: ClassVar[tuple[str, ...]] = (REGULAR,)

    def __init__(self, *args: Any, wanted: Sequence[str] = DEFAULT_EDITIONS, **kw: Any):
        super().__init__(*args, **kw)
        self.wanted = tuple(wanted)

    def resolve(self, avid: Avid, editions: Sequence[str] | None = None) -> Found:
        """Find ``avid`` on this site, in the first of ``editions`` (default: ``wanted``) it has.

        Returns:
            Found: page URL, playlist URL (checked with ``check_url``), title and cover when
            known, and the edition found.
        Raises:
            SourceNotFound, SourceBlocked, UpstreamError, LayoutChanged: each naming this site.
            A site that serves none of ``editions`` answers SourceNotFound without a request.
        """
        asked = [e for e in (self.wanted if editions is None else editions) if e in self.editions]
        return self._guard(avid, lambda: self._resolve_editions(avid, asked))

    def _resolve_editions(self, avid: Avid, asked: list[str]) -> Found:
        """Each edition in turn; "not found" moves on, anything else stops (same host).
        With none found, a page without its landmark beats "not found", as in :meth:`first_found`."""
        last: SourceError | None = None
        for edition in asked:
            try:
                return self._resolve_edition(avid, edition)
            except (SourceNotFound, LayoutChanged) as e:
                if last is None or isinstance(e, LayoutChanged):
                    last = e
        raise last or SourceNotFound(self.name, avid.code, detail="serves none of the editions asked for "
                                     f"({', '.join(label(e) for e in self.editions)} only)")

    def _resolve_edition(self, avid: Avid, edition: str) -> Found:
        """One edition's page; a site with edition pages overrides this, others serve the regular one."""
        return self._resolve(avid)

    def _resolve(self, avid: Avid) -> Found:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    def found(self, avid: Avid, page_url: str, playlist_url: str, *, title: str = "",
              cover_url: str = "", referer: str = "", headers: Mapping[str, str] | None = None,
              edition: str = REGULAR) -> Found:
        """Build a :class:`Found`; the playlist URL must be safe, an unsafe cover is dropped."""
        return Found(source=self.name, avid=avid.code, page_url=page_url,
                     playlist_url=self.safe(playlist_url), title=title.strip(),
                     cover_url=self.safe_or_empty(cover_url),
                     referer=referer or self.base_url + "/", headers=dict(headers or {}),
                     edition=edition)

    def first_found(self, avid: Avid, urls: list[str], attempt: Callable[[str], T]) -> T:
        """Try ``attempt(url)`` for each candidate page URL in order; return the first success.

        A 404 moves on to the next URL; blocks and upstream errors stop at once (the other
        URLs are on the same host). When no URL has a page, the strongest outcome wins:
        a page without its landmark beats "not found".
        """
        last: SourceError | None = None
        for u in urls:
            try:
                return attempt(u)
            except (SourceNotFound, LayoutChanged) as e:
                if last is None or isinstance(e, LayoutChanged):
                    last = e
        raise last or LayoutChanged(self.name, avid.code, detail="no candidate page URL")


# -- small helpers shared by the parsers ----------------------------------------------

def absolute(href: str, base_url: str) -> str:
    """Prefix a relative href with the site base URL (kept with its path prefix)."""
    href = (href or "").strip()
    if not href:
        return ""
    if href.startswith("//"):
        return (urlsplit(base_url).scheme or "https") + ":" + href
    if urlsplit(href).scheme:
        return href
    if href.startswith("/"):
        return base_url.rstrip("/") + href
    return urljoin(base_url.rstrip("/") + "/", href)


def strip_avid(title: str, code: str) -> str:
    """``"ABC-123 A title"`` → ``"A title"`` (the AVID prefix as the sites print it)."""
    t = (title or "").strip()
    m = re.match(rf"^\[?{_avid_pattern(code)}\]?(?![A-Za-z0-9])[\s:：\-–—|]*", t, re.I)
    return t[m.end():].strip() if m else t


def first_result(html: str, link: re.Pattern[str], code: str, source: str) -> str:
    """The first search-result link (group 1) whose ``<a>`` element names ``code``.

    Search pages list loose matches and suggestions too; a result that does not name the
    AVID is not taken, so a near miss never resolves to someone else's video.

    Raises:
        SourceNotFound: no result names the AVID (the detail says how many links there were).
    """
    n = 0
    for m in link.finditer(html):
        n += 1
        start = html.rfind("<a", 0, m.start())
        end = html.find("</a>", m.end())
        chunk = html[start if start >= 0 else m.start(): end if end >= 0 else m.end() + 500]
        if mentions_avid(chunk, code):
            return m.group(1)
    raise SourceNotFound(source, detail=f"no search result names the AVID ({n} results)")


def mentions_avid(text: str, code: str) -> bool:
    """Does ``text`` name ``code`` (``ABC-123``, ``abc-123`` or ``ABC123``), not ``ABC-1234``?"""
    return re.search(rf"(?<![A-Za-z0-9]){_avid_pattern(code)}(?![0-9])", text or "", re.I) is not None


def _avid_pattern(code: str) -> str:
    parts = [re.escape(p) for p in code.split("-")]
    return r"[-_ ]?".join(parts)
