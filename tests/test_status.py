"""The one HTTP status classifier (pipeline/status.py), and every caller deciding by it.

The callers (a site's page fetch, the home-page cookie fetch, the source probe and the HLS
engine's playlist fetch) each GET a real HTTP server on 127.0.0.1 that answers the status
under test, so a copy of the table creeping back into one of them shows up here.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pipeline.avid import parse
from pipeline.config import HttpConfig, SourceConfig, load
from pipeline.errors import SourceBlocked, SourceError, SourceNotFound, UpstreamError
from pipeline.status import status_error
from tools.fixture_site.server import CHALLENGE_PAGE

# status → (what it means, how the probe records it)
TABLE = {
    200: (None, "probe ok"),
    204: (None, "probe ok"),
    400: (UpstreamError, "upstream error"),
    401: (UpstreamError, "upstream error"),
    403: (SourceBlocked, "blocked"),
    404: (SourceNotFound, "not found"),
    410: (SourceNotFound, "not found"),
    429: (SourceBlocked, "blocked"),
    451: (SourceBlocked, "blocked"),
    500: (UpstreamError, "upstream error"),
    502: (UpstreamError, "upstream error"),
    503: (UpstreamError, "upstream error"),
}


@pytest.mark.parametrize("status", sorted(TABLE))
def test_status_table(status):
    assert status_error(status) is TABLE[status][0]


@pytest.mark.parametrize("status", [200, 403, 404, 503])
def test_a_challenge_page_is_blocked_whatever_the_status(status):
    assert status_error(status, is_challenge=True) is SourceBlocked


def test_the_outcome_words_are_the_ones_source_health_knows():
    from pipeline.source_health import HEALTHY_OUTCOMES

    assert SourceNotFound.outcome in HEALTHY_OUTCOMES  # the site works; it lacks the title
    assert SourceBlocked.outcome not in HEALTHY_OUTCOMES
    assert UpstreamError.outcome not in HEALTHY_OUTCOMES


# -- every caller, against a real server ---------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    """``/<status>/…`` answers that status; ``/challenge/<status>/…`` a challenge page with it."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        challenge = parts[0] == "challenge"
        status = int(parts[1] if challenge else parts[0])
        body = CHALLENGE_PAGE.encode() if challenge else b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ns0.ts\n#EXT-X-ENDLIST\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)) if status != 204 else "0")
        self.send_header("Set-Cookie", "sid=abc")
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


def _raised(fn) -> type[SourceError] | None:
    try:
        fn()
    except SourceError as e:
        return type(e)
    return None


CASES = [(s, False) for s in sorted(TABLE) if s != 204] + [(200, True), (404, True)]


@pytest.mark.parametrize("status,challenge", CASES)
def test_site_fetch_and_cookie_fetch_follow_the_table(server, tmp_path, status, challenge):
    from sources.cookies import fetch_home_cookies
    from sources.missav import MissAV

    base = f"{server}/challenge/{status}" if challenge else f"{server}/{status}"
    want = status_error(status, is_challenge=challenge)
    http = HttpConfig(allow_private_urls=True, retries=0)
    site = MissAV(SourceConfig(base_url=base, weight=10, min_interval_s=0), http)
    try:
        assert _raised(lambda: site.fetch(base + "/page", parse("ABC-123"))) is want
    finally:
        site.close()
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"http": {"retries": 0, "allow_private_urls": True},
                                        "sources": {"missav": {"base_url": base}}}))
    assert _raised(lambda: fetch_home_cookies("missav", load(cfg_path, {}))) is want


@pytest.mark.parametrize("status,challenge", CASES)
def test_probe_records_the_tables_outcome(server, tmp_path, r, redis_url, status, challenge):
    from actors.context import Context
    from actors.sweeping import probe_sources
    from pipeline.source_health import SourceHealth

    base = f"{server}/challenge/{status}" if challenge else f"{server}/{status}"
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "d"), "redis_url": redis_url,
        "http": {"retries": 0, "allow_private_urls": True},
        "sources": {"missav": {"base_url": base, "weight": 10}}}))
    SourceHealth(r).record("missav", "upstream error", "earlier")  # failing: due for a probe
    ctx = Context.create(load(cfg_path, {}), redis_url)
    try:
        want = "blocked" if challenge else TABLE[status][1]
        assert probe_sources(ctx) == {"missav": want}
    finally:
        ctx.redis.close()


@pytest.mark.parametrize("status,challenge", CASES)
def test_hls_playlist_fetch_follows_the_table(server, status, challenge):
    """Usable → parsed; blocked → SourceBlocked; not found → UpstreamError (an expired token:
    resolving again may fix it); anything else is retried, then UpstreamError."""
    from pipeline.hls.engine import load_media_playlist
    from pipeline.hls.fetch import UrlGuard
    from pipeline.http import HttpClient

    url = (f"{server}/challenge/{status}" if challenge else f"{server}/{status}") + "/index.m3u8"
    want = status_error(status, is_challenge=challenge)
    with HttpClient(HttpConfig(allow_private_urls=True, retries=0)) as client:
        guard = UrlGuard(True)
        got = _raised(lambda: load_media_playlist(client, url, guard=guard, retries=0))
    assert got is {None: None, SourceBlocked: SourceBlocked,
                   SourceNotFound: UpstreamError, UpstreamError: UpstreamError}[want]
