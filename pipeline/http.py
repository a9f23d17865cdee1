"""The HTTP client factory: curl_cffi with a browser profile whose User-Agent agrees with it.

Sources and the HLS engine get their sessions here, so impersonation, proxy, timeouts,
pacing and the URL safety check are decided in one place. curl_cffi errors are turned
into :class:`UpstreamError` where they enter.

Every checked request (and every redirect hop) is resolved once by ``pipeline.urlcheck``
and pinned with :func:`pin`: curl connects to the addresses that were checked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urljoin, urlsplit

from curl_cffi import CurlOpt
from curl_cffi import requests as cffi

from pipeline.config import HttpConfig
from pipeline.errors import UnresolvableHost, UnsafeURL, UpstreamError
from pipeline.urlcheck import Resolver, Target, check_target, check_url

__all__ = ["HttpClient", "Pacer", "RedisPacer", "Response", "UnsafeURL", "check_url", "pin"]

_REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CHALLENGE_MARKERS = ("cf-chl", "challenge-platform", "Just a moment...", "cf_chl_opt")


@dataclass
class Response:
    """What a source needs of a response; the body is already read."""

    status: int
    url: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_challenge(self) -> bool:
        """A Cloudflare challenge page, whatever the status (sites send it with 200 too)."""
        head = self.content[:20000].decode("utf-8", errors="replace")
        return any(m in head for m in CHALLENGE_MARKERS)


class Pacer:
    """Keeps a minimum interval between two requests to the same site (per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, key: str, min_interval_s: float) -> None:
        if min_interval_s <= 0:
            return
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(key, 0.0))
            self._next[key] = at + min_interval_s
        if at > now:
            time.sleep(at - now)


class RedisPacer(Pacer):
    """The same pacing shared by every worker on every machine, through Redis.

    Each site has a key holding the next free slot (Redis server time, in microseconds); one
    Lua call takes the slot and says how long to sleep, so two workers never fire at once.
    If Redis is unreachable the pacing falls back to this process alone.
    """

    _TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
local step = tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(at + step), 'PX', math.floor(step / 1000) + 60000)
return at - now
"""

    def __init__(self, client) -> None:
        super().__init__()
        self._take = client.register_script(self._TAKE)

    def wait(self, key: str, min_interval_s: float) -> None:
        if min_interval_s <= 0:
            return
        try:
            delay_us = int(self._take(keys=[f"nassav:pace:{key}"], args=[int(min_interval_s * 1_000_000)]))
        except Exception:  # Redis away: pace this process at least
            super().wait(key, min_interval_s)
            return
        if delay_us > 0:
            time.sleep(delay_us / 1_000_000)


def pin(session: cffi.Session, target: Target | None) -> None:
    """Make ``session``'s next request connect to ``target``'s checked addresses, or let
    curl resolve (``None``, or a target without addresses: a literal host, a proxy).

    Uses curl's resolve list through the session's public ``curl_options``, which
    curl_cffi applies to every request (the contract test in tests/security/test_ssrf_pinning.py
    fails loudly if a curl_cffi release stops doing so). curl replaces an earlier entry for
    the same host and port, so each check pins its own answer.
    """
    entry = target.resolve_entry if target is not None else None
    if entry is None:
        session.curl_options.pop(CurlOpt.RESOLVE, None)
    else:
        session.curl_options[CurlOpt.RESOLVE] = [entry]


class HttpClient:
    """A keep-alive browser-like client; one per thread (curl handles are not thread-safe)."""

    def __init__(self, cfg: HttpConfig, *, headers: Mapping[str, str] | None = None,
                 cookies: Mapping[str, str] | None = None, pacer: Pacer | None = None,
                 site: str = "", min_interval_s: float = 0.0, resolver: Resolver | None = None):
        self.cfg = cfg
        self.resolver = resolver  # None = socket.getaddrinfo; tests inject one
        self.site = site
        self.min_interval_s = min_interval_s
        self.pacer = pacer
        self._session = cffi.Session(impersonate=cfg.impersonate, proxy=cfg.proxy or None,
                                     timeout=cfg.timeout_s)
        self._session.headers.update({"User-Agent": cfg.user_agent})
        if headers:
            self._session.headers.update(dict(headers))
        if cookies:
            self._session.cookies.update(dict(cookies))

    def get(self, url: str, *, referer: str | None = None, headers: Mapping[str, str] | None = None,
            timeout_s: float | None = None, check: bool = True) -> Response:
        """GET ``url``; network failures raise :class:`UpstreamError`, HTTP statuses do not.

        With ``check`` (the default), ``url`` and every redirect hop are checked and curl
        connects to the addresses that were checked. Without it (a site's own configured base
        URL), the first host is trusted as configured, but a redirect to another origin is
        checked like any other URL.

        Raises:
            UnsafeURL: the URL or a redirect hop is refused.
            UpstreamError: network failure after the retries, a host without an address included
                (refused, never handed to curl, but DNS may come back).
        """
        if self.pacer:
            self.pacer.wait(self.site or urlsplit(url).netloc, self.min_interval_s)
        h = dict(headers or {})
        if referer:
            h["Referer"] = referer
        last: Exception | None = None
        for attempt in range(self.cfg.retries + 1):
            try:
                r = self._get(url, h, timeout_s or self.cfg.timeout_s, check)
            except (cffi.RequestsError, UnresolvableHost) as e:  # connection reset, timeout, DNS
                last = e
                time.sleep(min(0.5 * 2 ** attempt, 4))
                continue
            return Response(r.status_code, str(r.url), r.content, dict(r.headers))
        raise UpstreamError(self.site or urlsplit(url).netloc, detail=_short(last))

    def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None,
             timeout_s: float | None = None, check: bool = True) -> Response:
        """POST ``body`` to ``url`` once: no retries (a POST need not be safe to repeat) and no
        redirect followed (a 3xx comes back as it is). ``check`` as for :meth:`get`: without
        it, the host is trusted as configured (an API endpoint the user set).

        Raises:
            UnsafeURL: the URL is refused (with ``check``).
            UpstreamError: network failure or timeout.
        """
        try:
            pin(self._session, self.target(url) if check else None)
            r = self._session.post(url, data=body, headers=dict(headers or {}),
                                   timeout=timeout_s or self.cfg.timeout_s, allow_redirects=False)
        except (cffi.RequestsError, UnresolvableHost) as e:
            raise UpstreamError(self.site or urlsplit(url).netloc, detail=_short(e)) from None
        return Response(r.status_code, str(r.url), r.content, dict(r.headers))

    def _get(self, url: str, headers: dict[str, str], timeout_s: float, check: bool):
        """One GET, following redirects here so that every hop is checked and pinned before it
        is requested (curl would follow a public URL's redirect to 127.0.0.1 by itself)."""
        trusted = None if check else _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            same_site = trusted is not None and _origin(url) == trusted
            pin(self._session, None if same_site else self.target(url))
            r = self._session.get(url, headers=headers, timeout=timeout_s, allow_redirects=False)
            location = r.headers.get("Location")
            if r.status_code not in _REDIRECTS or not location:
                return r
            url = urljoin(url, location)
        raise UpstreamError(self.site or urlsplit(url).netloc, detail=f"more than {MAX_REDIRECTS} redirects")

    def target(self, url: str) -> Target:
        """Check ``url`` with this client's settings and resolver (one DNS answer, to pin)."""
        return check_target(url, allow_private=self.cfg.allow_private_urls, via_proxy=bool(self.cfg.proxy),
                            resolver=self.resolver)

    def cookies(self) -> dict[str, str]:
        return dict(self._session.cookies)

    @property
    def session(self) -> cffi.Session:
        """The underlying curl_cffi session, for streaming in the HLS engine."""
        return self._session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        p = urlsplit(url)
        return p.scheme, (p.hostname or ""), p.port
    except ValueError:
        return None


def _short(e: Exception | None) -> str:
    text = e.reason if isinstance(e, UnsafeURL) else str(e) if e else "no response"
    return text if len(text) < 200 else text[:197] + "..."
