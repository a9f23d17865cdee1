"""Server-side request forgery: URLs taken from fetched pages must be http(s) and, with
``http.allow_private_urls: false``, must not point to loopback, link-local or private
addresses — neither directly nor through a redirect.

Set-up: the sources' base URLs are configured explicitly (the fixture site on 127.0.0.1 is
trusted as configured), only Jable is enabled, and ``allow_private_urls`` is off. A
"canary" HTTP server on 127.0.0.1 records every request it gets, and every request not to
127.0.0.1/localhost goes through a recording HTTP proxy (``http.proxy``), so a request to
169.254.169.254 or 10.0.0.1 would be seen too. Nothing here needs the internet.

1. The Jable page's ``hlsUrl`` points at the canary (in several spellings of loopback), at
   169.254.169.254, 10.x, 192.168.x, ``file://``, ``gopher://`` or the fixture's own CDN:
   each job fails with an "unsafe URL" reason and no request reaches the target.
2. The page's playlist and cover are on a public-looking name (``cdn.example.test``) whose
   server (the proxy) answers with redirects to the canary and to 169.254.169.254: the
   redirect is refused before it is followed.
3. A source page (AvToday, served by a hostile site of the test's own at its configured base
   URL) nests its player in an iframe on ``cdn.example.test`` that redirects to the canary:
   the source fails with an unsafe-URL outcome and the canary is never asked.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from pipeline.config import DEFAULT_CATALOGUES, DEFAULT_SOURCES
from tests.faults.conftest import Cluster, events, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler):
        self.hits: list[str] = []
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()


class Canary(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        body = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nstolen.ts\n#EXT-X-ENDLIST\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Hostile(BaseHTTPRequestHandler):
    """An AvToday-shaped site: its search links to a video page on a public-looking host."""

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path.startswith("/search") and "SSRF-201" in self.path:
            _html(self, '<div class="video"><a href="http://video.example.test/video/ssrf-201">'
                        'SSRF-201 a title</a></div>')
        else:
            _empty(self, 404)

    def log_message(self, *a):
        pass


def _html(h: BaseHTTPRequestHandler, body: str) -> None:
    data = f"<!DOCTYPE html><html><body>{body}</body></html>".encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/html; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _empty(h: BaseHTTPRequestHandler, status: int) -> None:
    h.send_response(status)
    h.send_header("Content-Length", "0")
    h.end_headers()


class Proxy(BaseHTTPRequestHandler):
    """An HTTP proxy that plays a public CDN: its files redirect into the private network."""

    canary_port = 0

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path == "http://video.example.test/video/ssrf-201":
            _html(self, '<div class="player"><iframe src="http://cdn.example.test/embed/ssrf-201">'
                        '</iframe></div>')
        elif self.path.startswith("http://cdn.example.test/embed/"):
            self._redirect(f"http://127.0.0.1:{self.canary_port}/embed/ssrf-201")
        elif self.path.startswith("http://cdn.example.test/") and self.path.endswith(".m3u8"):
            self._redirect(f"http://127.0.0.1:{self.canary_port}/stolen.m3u8")
        elif self.path.startswith("http://cdn.example.test/"):
            self._redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
        else:
            _empty(self, 502)

    def _redirect(self, to: str) -> None:
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def make_setup(tmp_path, r, redis_url):
    """``make_setup(*sources)``: a cluster where only these sources are enabled (Jable on the
    fixture site, AvToday on the hostile site), ``allow_private_urls`` off, the recording proxy on."""
    made = []

    def make(*enabled: str):
        canary = Recorder(Canary)
        Proxy.canary_port = canary.server_address[1]
        proxy, hostile = Recorder(Proxy), Recorder(Hostile)
        site = FixtureSite.start(titles=[], stream_kind="clear", duration_s=2.0, segment_s=1.0)
        sources = {n: {"weight": 0} for n in DEFAULT_SOURCES if n not in enabled}
        if "avtoday" in enabled:
            sources["avtoday"] = {"base_url": f"http://127.0.0.1:{hostile.server_address[1]}"}
        c = Cluster(tmp_path, site, redis_url, extra={
            "http": {"allow_private_urls": False, "proxy": f"http://127.0.0.1:{proxy.server_address[1]}",
                     "retries": 0, "timeout_s": 5},
            "sources": sources, "catalogues": {n: {"weight": 0} for n in DEFAULT_CATALOGUES},
            "download": {"max_retries": 0, "segment_retries": 1}})
        c.env["NO_PROXY"] = c.env["no_proxy"] = "127.0.0.1,localhost"
        c.hostile = hostile
        made.append((c, site, (canary, proxy, hostile)))
        c.serve()
        c.worker("metadata")
        c.worker("download")
        c.wait_healthy(metadata=1, download=1)
        return c, canary, proxy

    yield make
    for c, site, servers in made:
        c.stop()
        site.stop()
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def _page_points_at(site: FixtureSite, avid: str, playlist_url: str, cover_url: str | None = None) -> None:
    """Make the fixture's Jable page for ``avid`` carry these URLs (as a hostile page would)."""
    t = site.add_title(avid)
    t.playlist_url = playlist_url
    if cover_url is not None:
        t.cover_url = cover_url


def test_page_derived_playlist_urls_to_private_targets_are_refused(make_setup, r: redis.Redis):
    c, canary, proxy = make_setup("jable")
    port = canary.server_address[1]
    targets = {
        "SSRF-001": f"http://127.0.0.1:{port}/loopback.m3u8",
        "SSRF-002": f"http://localhost:{port}/localhost.m3u8",
        "SSRF-003": f"http://2130706433:{port}/decimal.m3u8",
        "SSRF-004": f"http://0x7f000001:{port}/hex.m3u8",
        "SSRF-005": f"http://127.1:{port}/short.m3u8",
        "SSRF-006": f"http://0.0.0.0:{port}/zero.m3u8",
        "SSRF-007": f"http://[::ffff:127.0.0.1]:{port}/mapped.m3u8",
        "SSRF-008": f"http://[::1]:{port}/v6.m3u8",
        "SSRF-009": "http://169.254.169.254/latest/meta-data/iam/security-credentials/x.m3u8",
        "SSRF-010": "http://10.0.0.1/internal.m3u8",
        "SSRF-011": "http://192.168.1.1/router.m3u8",
        "SSRF-012": "file:///etc/passwd",
        "SSRF-013": f"gopher://127.0.0.1:{port}/_FLUSHALL",
        "SSRF-014": None,  # the fixture's own CDN on 127.0.0.1: loopback too
    }
    for avid, url in targets.items():
        if url is None:
            c.site.add_title(avid)
        else:
            _page_points_at(c.site, avid, url, cover_url=f"http://127.0.0.1:{port}/cover.jpg")
    jobs = {c.submit(a): a for a in targets}
    ends = wait_terminal(r, jobs, 60, f"every SSRF job to end ({c.log_path})")
    problems = []
    for job, e in ends.items():
        message = e.data.get("message", "")
        if e.type != "task_failed" or "unsafe URL" not in message:
            problems.append((jobs[job], e.type, message[:200]))
    assert not problems, problems
    assert canary.hits == [], f"requests reached the loopback canary: {canary.hits}"
    assert proxy.hits == [], f"requests to private targets went out (via the proxy): {proxy.hits}"
    stats = c.site.stats()
    assert not stats["playlists"] and not stats["segment_requests"], \
        f"the fixture CDN on 127.0.0.1 was asked: {stats['playlists']}"
    assert not [e for e in events(r) if e.type == "stage_started" and e.stage == "download"]
    record("SSRF: page-derived playlist URL to a private target", cases=len(targets),
           refused=len(targets), requests_to_targets=0, recover_s=0, data_lost="none")


def test_redirect_into_the_private_network_is_refused(make_setup, r: redis.Redis):
    c, canary, proxy = make_setup("jable")
    avid = "SSRF-101"
    _page_points_at(c.site, avid, f"http://cdn.example.test/{avid}/master.m3u8",
                    cover_url=f"http://cdn.example.test/{avid}/cover.jpg")
    job = c.submit(avid)
    end = wait_terminal(r, [job], 60, f"{avid} to end ({c.log_path})")[job]
    evs = [e for e in events(r) if e.job_id == job]
    stolen = [h for h in proxy.hits if "169.254.169.254" in h]
    assert canary.hits == [], f"a redirect to 127.0.0.1 was followed: {canary.hits}"
    assert stolen == [], f"a redirect to 169.254.169.254 was followed: {stolen}"
    assert end.type == "task_failed", end.data
    message = end.data.get("message", "")
    assert "non-public address" in message, message
    cover_warnings = [e.data.get("message", "") for e in evs if e.type == "warning" and e.stage == "cover"]
    assert cover_warnings and "non-public address" in cover_warnings[0], cover_warnings
    assert not (c.data / avid / f"{avid}.jpg").exists()
    record("SSRF: redirect from a public URL into the private network", playlist="refused",
           cover="refused", requests_to_targets=0, reason=message[:160], recover_s=0, data_lost="none")


def test_source_iframe_redirect_into_the_private_network_is_refused(make_setup, r: redis.Redis):
    c, canary, proxy = make_setup("avtoday")
    avid = "SSRF-201"
    job = c.submit(avid)
    end = wait_terminal(r, [job], 60, f"{avid} to end ({c.log_path})")[job]
    assert "http://video.example.test/video/ssrf-201" in proxy.hits, \
        f"AvToday's video page was not fetched: {c.hostile.hits} {proxy.hits}"
    assert canary.hits == [], f"the iframe's redirect to 127.0.0.1 was followed: {canary.hits}"
    assert end.type == "task_failed", end.data
    message = end.data.get("message", "")
    assert "avtoday: layout changed" in message and "unsafe URL" in message, message
    record("SSRF: source iframe redirecting into the private network", source="refused",
           requests_to_targets=0, reason=message[-160:], recover_s=0, data_lost="none")
