"""Fetch a site's cookies automatically: load its home page as a browser would.

Sites behind Cloudflare need a fresh session cookie in practice (FIELD_NOTES §1). When the
home page itself is a challenge, no cookie can be had this way; the user must paste one
from a browser (``POST /api/source/cookie``).
"""

from __future__ import annotations

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.http import HttpClient
from pipeline.status import status_error


def fetch_home_cookies(name: str, config: Config) -> dict[str, str]:
    """The cookies ``name``'s home page sets, or a typed error saying why there are none."""
    site = config.sources.get(name) or config.catalogues.get(name)
    if site is None or not site.base_url:
        raise ConfigError(f"sources.{name}", "a configured source or catalogue with a base_url")
    with HttpClient(config.http, site=name) as client:
        r = client.get(site.base_url.rstrip("/") + "/", check=False)
        kind = status_error(r.status, is_challenge=r.is_challenge)
        if kind is not None:
            detail = "home page is a challenge; paste a cookie from a browser" if r.is_challenge else ""
            raise kind(name, detail=detail, status=r.status)
        return client.cookies()
