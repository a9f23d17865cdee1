"""Fetch a site's cookies automatically: load its home page as a browser would.

Sites behind Cloudflare need a fresh session cookie in practice (FIELD_NOTES §1). When the
home page itself is a challenge, no cookie can be had this way; the user must paste one
from a browser (``POST /api/source/cookie``).
"""

from __future__ import annotations

from pipeline.config import Config
from pipeline.errors import ConfigError, SourceBlocked, UpstreamError
from pipeline.http import HttpClient


def fetch_home_cookies(name: str, config: Config) -> dict[str, str]:
    """The cookies ``name``'s home page sets, or a typed error saying why there are none."""
    site = config.sources.get(name) or config.catalogues.get(name)
    if site is None or not site.base_url:
        raise ConfigError(f"sources.{name}", "a configured source or catalogue with a base_url")
    with HttpClient(config.http, site=name) as client:
        r = client.get(site.base_url.rstrip("/") + "/", check=False)
        if r.is_challenge:
            raise SourceBlocked(name, detail="home page is a challenge; paste a cookie from a browser",
                                status=r.status)
        if r.status in (403, 429, 451):
            raise SourceBlocked(name, status=r.status)
        if r.status >= 400:
            raise UpstreamError(name, status=r.status)
        return client.cookies()
