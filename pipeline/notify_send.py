"""Sending one delivery: a signed webhook, Apprise URLs, or a media server's folder rescan.

Each sender makes one attempt and either returns the HTTP status it got (2xx) or raises
:class:`DeliveryFailed` saying why; retrying is the caller's business (``actors/notify.py``).
Webhooks and media servers are reached through ``pipeline.http`` on URLs the user configured
(LAN and localhost allowed, no proxy, redirects not followed); Apprise speaks to its services
itself. Secrets (the HMAC key, API keys, tokens, Apprise URLs) never appear in an error text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import posixpath
import re
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

from pipeline.config import HttpConfig, MediaServerConfig, NotifyTarget
from pipeline.errors import Retriable, UnsafeURL, UpstreamError
from pipeline.http import HttpClient
from pipeline.logs import redact

SIGNATURE_HEADER = "X-Nassav-Signature"
USER_AGENT = "nassav-notify/1"


class DeliveryFailed(Retriable):
    """One attempt did not get through: ``status`` is the HTTP answer (None: no answer)."""

    def __init__(self, target: str, detail: str, status: int | None = None):
        self.target, self.detail, self.status = target, detail, status
        super().__init__(f"{target}: {detail}" + (f" (HTTP {status})" if status else ""))


def sign(secret: str, body: bytes) -> str:
    """The ``X-Nassav-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def client(timeout_s: float) -> HttpClient:
    """A client for configured hosts: no proxy (a LAN server is not behind it), one try."""
    return HttpClient(HttpConfig(timeout_s=timeout_s, retries=0), headers={"User-Agent": USER_AGENT})


def _answer(name: str, http: HttpClient, method: str, url: str, *, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, shown_url: str = "") -> int:
    # check=False: the host is the one the user configured (LAN, localhost), trusted as such;
    # a POST follows no redirect, a GET's redirect to another origin is checked.
    try:
        if method == "POST":
            r = http.post(url, body or b"", headers=headers, check=False)
        else:
            r = http.get(url, headers=headers, check=False)
    except UpstreamError as e:
        raise DeliveryFailed(name, f"no answer from {shown_url or mask_url(url)}: {redact(e.detail)}") from None
    except UnsafeURL as e:  # a redirect off the configured host, refused
        raise DeliveryFailed(name, f"{shown_url or mask_url(url)} redirected to a refused URL ({e.reason})") from None
    if not 200 <= r.status < 300:
        raise DeliveryFailed(name, f"{shown_url or mask_url(url)} answered {r.status}: "
                                   f"{redact(r.text[:200].strip())}", r.status)
    return r.status


def send_webhook(http: HttpClient, target: NotifyTarget, payload: Mapping[str, Any]) -> int:
    """POST ``payload`` as JSON, signed when the target has a secret."""
    body = json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False, default=str).encode()
    headers = {"Content-Type": "application/json", "X-Nassav-Event": str(payload.get("event", "")),
               "X-Nassav-Delivery": str(payload.get("delivery_id", ""))}
    if target.secret:
        headers[SIGNATURE_HEADER] = sign(target.secret, body)
    return _answer(target.name, http, "POST", target.url, body=body, headers=headers)


def send_apprise(target: NotifyTarget, title: str, body: str) -> int:
    """Send through every Apprise URL of the target; 200 when all of them took it."""
    import apprise

    # Apprise's own log lines quote whole service URLs, tokens included ("Unparseable Telegram
    # URL tgram://…"): they stay out of our logs; its failures are reported here, masked.
    logging.getLogger("apprise").propagate = False
    ap = apprise.Apprise()
    urls = [u for u in (target.url, *target.urls) if u]
    for n, u in enumerate(urls, 1):
        if not ap.add(u):
            raise DeliveryFailed(target.name, f"Apprise does not read URL #{n} ({apprise_scheme(u)}://…)")
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = ap.notify(body=body or title, title=title)
        lines = [ln for ln in captured.getvalue().splitlines() if ln.strip()]
    if not ok:
        # Apprise's own log says why; it may quote a URL, so only its last lines, redacted.
        why = " | ".join(_strip_urls(ln) for ln in lines[-2:]) or "a service refused the message"
        raise DeliveryFailed(target.name, f"Apprise: {why[:300]}")
    return 200


def unreadable_apprise_urls(target: NotifyTarget) -> list[str]:
    """The target's Apprise URLs that Apprise cannot read, masked (``#2 (tgram://…)``)."""
    import apprise

    logging.getLogger("apprise").propagate = False  # see send_apprise
    urls = [u for u in (target.url, *target.urls) if u]
    return [f"#{n} ({apprise_scheme(u)}://…)" for n, u in enumerate(urls, 1) if not apprise.Apprise().add(u)]


def map_path(path: str, path_map: Mapping[str, str]) -> str:
    """``path`` as a media server sees it: the longest matching ``from`` prefix replaced."""
    best = ""
    for src in path_map:
        s = src.rstrip("/") or "/"
        if (path == s or path.startswith(s.rstrip("/") + "/")) and len(s) > len(best):
            best = s
    if not best:
        return path
    rest = path[len(best):].lstrip("/")
    dst = path_map.get(best) or path_map.get(best + "/") or ""
    return posixpath.join(dst, rest) if rest else dst


def rescan(http: HttpClient, server: MediaServerConfig, folder: str) -> int:
    """Ask ``server`` to rescan ``folder`` (this machine's path; mapped with ``path_map``)."""
    path = map_path(folder, server.path_map)
    base = server.url.rstrip("/")
    name = server.name or server.kind
    if server.kind == "plex":
        url = f"{base}/library/sections/{server.section}/refresh?path={quote(path, safe='')}"
        return _answer(name, http, "GET", url, headers={"X-Plex-Token": server.token or "",
                                                        "Accept": "application/json"},
                       shown_url=f"{base}/library/sections/{server.section}/refresh")
    body = json.dumps({"Updates": [{"Path": path, "UpdateType": "Modified"}]}).encode()
    return _answer(name, http, "POST", f"{base}/Library/Media/Updated", body=body,
                   headers={"Content-Type": "application/json", "X-Emby-Token": server.api_key or ""})


def mask_url(url: str) -> str:
    """``scheme://host[:port]/…``: enough to recognise a target, nothing of its path or query
    (webhook and Apprise URLs carry tokens there)."""
    try:
        p = urlsplit(url)
        host = p.hostname or ""
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return "(unreadable URL)"
    if p.scheme in ("http", "https", "json", "jsons", "form", "forms", "xml", "xmls"):
        return f"{p.scheme}://{host}{port}" + ("/…" if (p.path.strip('/') or p.query) else "")
    return f"{p.scheme}://…"


def apprise_scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def _strip_urls(line: str) -> str:
    # Apprise logs the service URL in some errors; a token may sit in its path.
    line = line.split(" - ", 2)[-1]
    return redact(re.sub(r"\b[a-z][a-z0-9+.-]*://\S+", lambda m: mask_url(m.group(0)), line))
