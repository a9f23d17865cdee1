"""A page from another origin, in real Chromium, tries to turn the user's browser against the
gateway: a second local port (a tiny http.server) serves a page that deletes, submits, changes
settings, overwrites a cookie and reads the event stream (fetch with text/plain and JSON, form
POSTs, EventSource, WebSocket), and a rebound name (Chromium's resolver maps it to 127.0.0.1)
fetches the API as its own origin. With no token set and with one (the user having opened the
dashboard, so the browser holds its cookie). Judged on the gateway's side: the library folder is
intact, nothing was queued, no settings or cookie file was written, no live-event subscriber
ever existed, and the page saw no event.

Runs Debian's ``chromium`` through Playwright, as tests/test_web_browser.py does.
"""

from __future__ import annotations

import http.server
import json
import threading
from contextlib import contextmanager
from typing import Iterator

import pytest
from playwright.sync_api import sync_playwright

from pipeline import overrides
from pipeline import cookies, events as ev
from pipeline.claims import claim_key
from pipeline.events import Events
from pipeline.jobs import ACTIVE
from tests.api_helpers import put_resource
from tests.conftest import free_port
from tests.live_server import live_gateway
from tests.test_web_browser import ARGS, BROWSER_MARKS, CHROMIUM

pytestmark = BROWSER_MARKS

TOKEN = "browser-guard-token-0123456789"
VICTIM = "DEMO-002"
QUEUED = ("DEMO-101", "DEMO-102", "DEMO-103", "DEMO-104")
REBIND = "rebind.evil.example"

# The attacking page. Every attempt is recorded in window.results; the forms post into iframes.
PAGE = r"""<!doctype html><meta charset="utf-8"><title>cute cats</title><body><script>
const GW = %(gw)s, results = {};
const del = JSON.stringify({actions: [{action: "delete", avid: "%(victim)s"}]});
async function attempt(name, fn) {
  try { results[name] = await fn(); } catch (e) { results[name] = "error: " + e.name; }
}
function form(name, action, enctype, fields) {
  return new Promise(resolve => {
    const frame = document.createElement("iframe");
    frame.name = "f-" + name;
    document.body.appendChild(frame);
    const f = document.createElement("form");
    f.method = "POST"; f.action = action; f.enctype = enctype; f.target = frame.name;
    for (const [k, v] of Object.entries(fields)) {
      const i = document.createElement("input");
      i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
    }
    document.body.appendChild(f);
    const timer = setTimeout(() => resolve("no load"), 8000);
    frame.addEventListener("load", () => { clearTimeout(timer); resolve("submitted"); });
    f.submit();
  });
}
function listen(open) {
  // Listen for events for a while; the test keeps emitting them meanwhile.
  return new Promise(resolve => {
    const out = {messages: 0, opened: false, errors: 0};
    const close = open(out);
    setTimeout(() => { close(); resolve(out); }, 2500);
  });
}
(async () => {
  // Cookies ignore ports: this page can set the dashboard's double-submit CSRF cookie.
  document.cookie = "__dd_csrf=forged; path=/";
  await attempt("fetch text/plain delete", () => fetch(GW + "/api/resources/batch",
    {method: "POST", mode: "no-cors", body: del, headers: {"Content-Type": "text/plain"}}).then(r => r.type));
  await attempt("fetch JSON delete", () => fetch(GW + "/api/resources/batch",
    {method: "POST", body: del, headers: {"Content-Type": "application/json"}}).then(r => r.status));
  await attempt("fetch empty submit", () => fetch(GW + "/api/downloads/%(q0)s",
    {method: "POST", mode: "no-cors"}).then(r => r.type));
  await attempt("fetch text/plain batch submit", () => fetch(GW + "/api/downloads/batch_submit",
    {method: "POST", mode: "no-cors", body: JSON.stringify({avids: ["%(q1)s"]})}).then(r => r.type));
  await attempt("fetch JSON settings", () => fetch(GW + "/api/setting", {method: "PUT",
    body: JSON.stringify({download: {concurrency: 1}}), headers: {"Content-Type": "application/json"}})
    .then(r => r.status));
  await attempt("fetch text/plain cookie", () => fetch(GW + "/api/source/cookie", {method: "POST",
    mode: "no-cors", body: JSON.stringify({source: "missav", cookie: "cf_clearance=attacker"})}).then(r => r.type));
  await attempt("fetch read library", () => fetch(GW + "/api/resources/").then(r => r.status));
  // A text/plain form whose body is valid JSON: name + "=" + value.
  results["form text/plain delete"] = await form("del", GW + "/api/resources/batch", "text/plain",
    {[del.slice(0, -1) + ', "x": "']: '"}'});
  results["form submit"] = await form("sub", GW + "/api/downloads/%(q2)s", "application/x-www-form-urlencoded",
    {x: "1"});
  results["form text/plain settings"] = await form("set", GW + "/api/setting", "text/plain",
    {'{"download": {"concurrency": 2}, "x": "': '"}'});
  results["form dashboard requeue"] = await form("dash", GW + "/dashboard/requeue-message",
    "application/x-www-form-urlencoded", {__dd_csrf: "forged", queue: "download", id: "nope"});
  results["EventSource"] = await listen(out => {
    const es = new EventSource(GW + "/api/events");
    es.onopen = () => { out.opened = true; };
    es.onmessage = () => { out.messages += 1; };
    es.onerror = () => { out.errors += 1; };
    return () => es.close();
  });
  results["WebSocket"] = await listen(out => {
    const ws = new WebSocket(GW.replace("http", "ws") + "/ws/tasks/");
    ws.onopen = () => { out.opened = true; };
    ws.onmessage = () => { out.messages += 1; };
    ws.onerror = () => { out.errors += 1; };
    return () => ws.close();
  });
  window.results = results;
})();
</script>"""


@contextmanager
def attacker_site(gateway_base: str) -> Iterator[str]:
    """A page on another local port (another origin, the same site to a browser)."""
    body = (PAGE % {"gw": json.dumps(gateway_base), "victim": VICTIM, "q0": QUEUED[0], "q1": QUEUED[1],
                    "q2": QUEUED[2]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name=f"attacker-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Emitter:
    """Emits an event every 50 ms and watches the relay: a subscriber, if one ever existed,
    would have been handed these."""

    def __init__(self, r, relay):
        self.events, self.relay = Events(r), relay
        self.max_subscribers = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.events.emit(ev.PROGRESS, avid="DEMO-001", job_id="bait", data={"percent": self.sent % 100})
            self.sent += 1
            self.max_subscribers = max(self.max_subscribers, len(self.relay.subs))
            self._stop.wait(0.05)

    def __enter__(self) -> "Emitter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
def test_a_page_on_another_origin_cannot_use_the_gateway(token, tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, VICTIM)
    with live_gateway(data, redis_url, api_token=token) as gw, attacker_site(gw.base) as evil, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=[*ARGS, f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"])
        try:
            ctx = browser.new_context()
            page = ctx.new_page()
            if token:
                # The user opened the dashboard: the browser now holds its nassav_token cookie.
                page.goto(f"{gw.base}/dashboard/?token={token}", wait_until="domcontentloaded")
                assert any(c["name"] == "nassav_token" for c in ctx.cookies())
            with Emitter(r, gw.st.relay) as emitter:
                page.goto(evil, wait_until="domcontentloaded")
                page.wait_for_function("window.results !== undefined", timeout=60_000)
                results = page.evaluate("window.results")
                # DNS rebinding: a page whose own name now resolves to the gateway fetches it as
                # its own origin (same-origin to the browser: JSON, no preflight, readable).
                page.goto(f"http://{REBIND}:{gw.port}/", wait_until="domcontentloaded")
                rebound = page.evaluate("""async () => {
                    const del = JSON.stringify({actions: [{action: "delete", avid: "%s"}]});
                    const out = {};
                    for (const [name, path, init] of [
                        ["read", "/api/resources/", {}],
                        ["settings", "/api/setting", {method: "PUT", headers: {"Content-Type": "application/json"},
                                                       body: JSON.stringify({download: {concurrency: 3}})}],
                        ["delete", "/api/resources/batch", {method: "POST", body: del,
                                                            headers: {"Content-Type": "application/json"}}],
                        ["submit", "/api/downloads/%s", {method: "POST"}]]) {
                        const r = await fetch(path, init);
                        out[name] = [r.status, await r.text()];
                    }
                    return out;
                }""" % (VICTIM, QUEUED[3]))
            # The page did send everything (each fetch settled, each form loaded its frame)...
            assert len(results) == 13, results
            for name in ("form text/plain delete", "form submit", "form text/plain settings",
                         "form dashboard requeue"):
                assert results[name] == "submitted", (name, results)
            assert results["fetch text/plain delete"] == "opaque", results  # sent, answer unreadable
            # ...and learnt nothing: no CORS grant, no event.
            assert results["fetch JSON delete"].startswith("error") and \
                results["fetch read library"].startswith("error"), results
            for stream in ("EventSource", "WebSocket"):
                assert results[stream]["messages"] == 0 and not results[stream]["opened"], results
            for name, (status, text) in rebound.items():
                assert status == 400 and "allowed_hosts" in text, (name, status, text)
            assert emitter.sent > 10
        finally:
            browser.close()
        # The gateway's side.
        assert emitter.max_subscribers == 0 and len(gw.st.relay.subs) == 0
        assert (data / VICTIM / f"{VICTIM}.json").exists()
        assert r.zcard(ACTIVE) == 0 and not any(r.exists(claim_key(a)) for a in QUEUED)
        assert not overrides.path(data).exists() and not cookies.path(data).exists()
