"""The address that was checked is the address that is connected to.

Two real HTTP servers listen on the same port of two loopback addresses (127.0.0.2 answers
"first", 127.0.0.3 answers "second"). The names used (``pinned.test`` …) exist in no DNS: the
injected resolver is the only way to an address, and it changes its answer on its second
call, as a rebinding DNS server would. The requests go through the real curl_cffi client,
unpatched; only loopback addresses are ever connected to.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import curl_cffi
import pytest
from curl_cffi import requests as cffi

from pipeline.config import HttpConfig
from pipeline.errors import UnsafeURL, UpstreamError
from pipeline.hls.fetch import Fetcher, RateLimiter, TransientError
from pipeline.http import HttpClient, pin
from pipeline.urlcheck import Target, UrlGuard

FIRST, SECOND = "127.0.0.2", "127.0.0.3"


class Named(BaseHTTPRequestHandler):
    """Answers its server's name; ``/go/<host>`` redirects to ``http://<host>:<port>/end``."""

    def do_GET(self):
        self.server.hits.append((self.headers.get("Host"), self.path))
        if self.path.startswith("/go/"):
            self.send_response(302)
            self.send_header("Location", f"http://{self.path[4:]}:{self.server.server_address[1]}/end")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def servers():
    """``(port, first, second)``: servers on FIRST and SECOND, same port."""
    started = []
    for _ in range(20):
        first = ThreadingHTTPServer((FIRST, 0), Named)
        try:
            second = ThreadingHTTPServer((SECOND, first.server_address[1]), Named)
        except OSError:  # that port is taken on 127.0.0.3: try another
            first.server_close()
            continue
        break
    else:
        pytest.fail("no port free on both 127.0.0.2 and 127.0.0.3")
    for srv, name in ((first, "first"), (second, "second")):
        srv.name, srv.hits, srv.daemon_threads = name, [], True
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        started.append((srv, t))
    yield first.server_address[1], first, second
    for srv, t in started:
        srv.shutdown()
        srv.server_close()
        t.join(5)


class Rebinding:
    """A resolver whose answer for a name changes after the first question."""

    def __init__(self, plan: dict[str, list[str]]):
        self.plan = plan  # name -> one answer per call; the last repeats
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        n = sum(1 for h in self.asked if h == host)
        self.asked.append(host)
        answers = self.plan[host]
        return [answers[min(n, len(answers) - 1)]]


PRIVATE_OK = HttpConfig(allow_private_urls=True, retries=0, timeout_s=5)
PRIVATE_REFUSED = HttpConfig(allow_private_urls=False, retries=0, timeout_s=5)


def test_http_client_connects_to_the_checked_answer_once_per_check(servers):
    port, first, second = servers
    dns = Rebinding({"pinned.test": [FIRST, SECOND]})
    with HttpClient(PRIVATE_OK, resolver=dns) as c:
        r = c.get(f"http://pinned.test:{port}/a")
        assert (r.status, r.content) == (200, b"first")
        assert dns.asked == ["pinned.test"]  # curl did not resolve again
        assert first.hits == [(f"pinned.test:{port}", "/a")] and second.hits == []
        # The next request is a new check: it asks once more and connects to that answer.
        r = c.get(f"http://pinned.test:{port}/b")
        assert r.content == b"second" and dns.asked == ["pinned.test"] * 2
        assert second.hits == [(f"pinned.test:{port}", "/b")]


def test_http_client_pins_every_redirect_hop(servers):
    port, first, second = servers
    dns = Rebinding({"start.test": [FIRST, SECOND], "hop.test": [SECOND, FIRST]})
    with HttpClient(PRIVATE_OK, resolver=dns) as c:
        r = c.get(f"http://start.test:{port}/go/hop.test")
    assert (r.status, r.content) == (200, b"second")
    assert dns.asked == ["start.test", "hop.test"]
    assert first.hits == [(f"start.test:{port}", "/go/hop.test")]
    assert second.hits == [(f"hop.test:{port}", "/end")]


def test_a_trusted_site_redirecting_off_site_is_checked_and_never_followed(servers):
    """The configured base URL is trusted as configured (here a literal loopback address with
    private URLs off); its redirect to another host that resolves to loopback is refused."""
    port, first, second = servers
    dns = Rebinding({"evil.test": [SECOND]})
    with HttpClient(PRIVATE_REFUSED, resolver=dns) as c:
        with pytest.raises(UnsafeURL, match=r"evil.test resolves to the non-public address 127.0.0.3 \(loopback\)"):
            c.get(f"http://{FIRST}:{port}/go/evil.test", check=False)
        with pytest.raises(UnsafeURL, match="loopback"):
            c.get(f"http://{FIRST}:{port}/go/evil.test")  # unchecked only when the caller trusts it
    assert first.hits == [(f"{FIRST}:{port}", "/go/evil.test")] and second.hits == []


def test_an_unresolvable_host_is_an_upstream_error_naming_it_and_nothing_is_connected(servers):
    port, first, second = servers

    def nxdomain(host, port):
        raise OSError(-2, "Name or service not known")

    with HttpClient(PRIVATE_OK, resolver=nxdomain, site="jable") as c:
        with pytest.raises(UpstreamError) as e:
            c.get(f"http://gone.test:{port}/")
    assert "host gone.test does not resolve" in str(e.value) and str(e.value).startswith("jable: upstream error")
    assert first.hits == [] and second.hits == []


def _fetcher(guard: UrlGuard) -> Fetcher:
    return Fetcher(PRIVATE_OK, {}, guard=guard, limiter=RateLimiter(0), stop=threading.Event(),
                   stall_timeout_s=5)


def test_hls_fetcher_pins_the_guards_answer_for_every_segment_and_hop(servers):
    port, first, second = servers
    dns = Rebinding({"cdn.test": [FIRST, SECOND], "hop.test": [SECOND, FIRST]})
    f = _fetcher(UrlGuard(True, resolver=dns))
    try:
        bodies = [bytes(f.get(f"http://cdn.test:{port}/seg{i}.ts")) for i in range(4)]
        assert bodies == [b"first"] * 4
        assert bytes(f.get(f"http://cdn.test:{port}/go/hop.test")) == b"second"
        assert bytes(f.get(f"http://hop.test:{port}/again")) == b"second"
    finally:
        f.close()
    assert dns.asked == ["cdn.test", "hop.test"]  # once per host for the whole download
    assert [p for _, p in first.hits] == [f"/seg{i}.ts" for i in range(4)] + ["/go/hop.test"]
    assert [p for _, p in second.hits] == ["/end", "/again"]


def test_hls_fetcher_refuses_a_private_answer_and_retries_an_unresolvable_host(servers):
    port, first, second = servers
    refusing = _fetcher(UrlGuard(False, resolver=Rebinding({"evil.test": [SECOND]})))
    unresolved = _fetcher(UrlGuard(True, resolver=lambda h, p: []))
    try:
        with pytest.raises(UnsafeURL, match="loopback"):
            refusing.get(f"http://evil.test:{port}/seg.ts")
        with pytest.raises(TransientError, match="host gone.test does not resolve"):
            unresolved.get(f"http://gone.test:{port}/seg.ts")
    finally:
        refusing.close()
        unresolved.close()
    assert first.hits == [] and second.hits == []


def test_contract_curl_cffi_applies_session_curl_options_resolve_per_request(servers):
    """``pipeline.http.pin`` relies on curl_cffi applying ``Session.curl_options`` (here
    CURLOPT_RESOLVE) to every request and on curl replacing an entry for the same host:port."""
    port, first, second = servers
    version = curl_cffi.__version__
    with cffi.Session() as s:
        pin(s, Target(f"http://contract.test:{port}/", "contract.test", port, (FIRST,)))
        try:
            got = s.get(f"http://contract.test:{port}/", timeout=5).content
        except cffi.RequestsError as e:
            pytest.fail(f"curl_cffi {version}: Session.curl_options[CurlOpt.RESOLVE] was not applied "
                        f"({e}); pipeline.http.pin must be rewritten for this release")
        assert got == b"first", f"curl_cffi {version}: the pinned address was not used"
        pin(s, Target(f"http://contract.test:{port}/", "contract.test", port, (SECOND,)))
        assert s.get(f"http://contract.test:{port}/", timeout=5).content == b"second", \
            f"curl_cffi {version}: a second pin for the same host:port did not replace the first"
        pin(s, None)
        assert not s.curl_options, f"curl_cffi {version}: pin(None) left {s.curl_options}"
