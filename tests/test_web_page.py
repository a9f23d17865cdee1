"""The web page's files as served: no build step, nothing fetched from elsewhere, public shell."""

from __future__ import annotations

import re
import urllib.request

import pytest

from gateway.web import STATIC_DIR
from tests.live_server import live_gateway


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_files_reference_nothing_outside_the_server():
    # Users run this offline: no CDN, no web font, no analytics; every URL is relative.
    for f in STATIC_DIR.iterdir():
        text = f.read_text(encoding="utf-8")
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)|url\(([^)]+)\)|fetch\(["'`]([^"'`]+)""", text)
        for found in (u for groups in urls for u in groups if u):
            assert not re.match(r"^(https?:)?//", found), f"{f.name} loads {found}"
            assert not found.startswith("/"), f"{f.name}: {found} breaks under a sub-path proxy"
        assert "@import" not in text, f.name


@pytest.fixture
def gw(redis_url, r, tmp_path):
    # A token is set: the page and its assets stay public, the API does not.
    with live_gateway(tmp_path / "data", redis_url, api_token="s3cret") as g:
        yield g


def test_page_and_assets_are_served_publicly(gw):
    code, headers, body = get(gw.base + "/")
    assert code == 200 and headers["content-type"].startswith("text/html")
    html = body.decode()
    for asset in re.findall(r'(?:src|href)="(web/[^"]+)"', html):
        code, headers, body = get(f"{gw.base}/{asset}")
        assert code == 200 and body, asset
        assert headers["cache-control"] == "no-cache"
        # Revalidation is cheap: the same ETag answers 304.
        code, _, _ = get(f"{gw.base}/{asset}", {"If-None-Match": headers["etag"]})
        assert code == 304, asset
    assert {"web/app.js", "web/app.css"} <= set(re.findall(r'"(web/app\.\w+)"', html))
    code, _, _ = get(gw.base + "/api/resources/")
    assert code == 401
    code, _, _ = get(gw.base + "/web/missing.js")  # only the page's own files are public
    assert code == 401
