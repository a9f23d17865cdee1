"""The fixture HTTP server: fake sites, an HLS CDN with fault knobs, images, control.

One port serves everything (``ROOT`` = ``http://127.0.0.1:PORT``)::

    /site/<name>/...                 fake pages of each site (sites/<name>.py)
    /cdn/<AVID>/master.m3u8          the HLS CDN: master → v0/index.m3u8 (low), v1/index.m3u8 (high)
    /cdn/<AVID>/[v0/|v1/]<file>      media playlist, segments, key.bin, init.mp4
    /surrit/<uuid>/playlist.m3u8     the same tree as /cdn/<AVID>/, addressed MissAV-style
    /memocdn/stream/<AVID>/master.m3u8   the same tree, addressed Memo-style
    /img/<AVID>/cover.jpg, /img/<AVID>/sample-<n>.jpg, /img/actor/<n>.jpg, /img/nowprinting.gif
    /pics/cover/<avid lower>_b.jpg   the cover, where JavBus-style relative hrefs lead
    GET /_control, POST /_control, POST /_control/reset, GET /_stats

Knobs (``POST /_control`` merges ``{"scenario": {...}, "faults": {...}, "titles": [...],
"editions": [...]}``):

- ``scenario``: ``{"<site>": s, "<site>:<AVID>": s, "*": s}`` with s in :data:`SCENARIOS`;
  a value of null removes the entry. ``<site>:<AVID>`` wins over ``<site>``, which wins
  over ``*``. The AVID of a request is found in its path or query (or a title's num_id);
  a page that names no AVID (a listing page) is keyed by its path instead: ``"javbus:/star/ab/2"``.
- ``faults``: see :data:`FAULT_DEFAULTS`. Rates apply to segment responses only and are
  decided by an RNG seeded with (seed, AVID, segment index, attempt number), so a rerun
  makes the same decisions whatever the thread interleaving. ``outage_s`` makes every CDN
  request answer 503 for that many seconds from the moment it is set.
- ``titles``: AVIDs (or ``{"avid": ..., "stream_kind": ..., "duration_s": ...}``) to add.
- ``editions``: ``[{"avid": ..., "edition": "C", "sites": ["jable"]}]``: those sites get that
  edition of a known title, served as a stream of its own (``FixtureState.add_edition``).

``POST /_control/reset`` clears scenarios, faults and stats; titles stay.
"""

from __future__ import annotations

import json
import random
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tools.fixture_site import images, sites
from tools.fixture_site.media import Stream, make_stream
from tools.fixture_site.titles import make_title
from tools.fixture_site.types import Reply, SiteRequest, Title

SCENARIOS = ("found", "not_found", "challenge_200", "challenge_403", "blocked_451",
             "error_500", "layout_changed", "timeout")
SITE_SCENARIOS = ("found", "not_found", "layout_changed")  # the ones handlers see

FAULT_DEFAULTS: dict[str, Any] = {
    "error_rate": 0.0,             # fraction of segment responses answered 500
    "truncate_rate": 0.0,          # fraction cut off mid-body (full Content-Length announced)
    "stall_rate": 0.0,             # fraction that send half the body, then pause stall_s
    "stall_s": 5.0,
    "bandwidth_bytes_per_s": 0,    # per-connection cap on segment bodies; 0 = none
    "latency_ms": 0,               # wait before a segment response's first byte
    "outage_s": 0.0,               # every CDN request answers 503 for this long, from now
    "fail_segments": [],           # segment indices that always answer 500
    "seed": 0,
    "timeout_s": 60.0,             # how long the 'timeout' scenario holds a request
    "absolute_uris": False,        # media playlists carry absolute URIs instead of relative
}

CDN_PREFIXES = ("cdn", "surrit", "memocdn")

_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".m4s": "video/iso.segment",
    ".mp4": "video/mp4", ".jpeg": "image/jpeg", ".jpg": "image/jpeg", ".bin": "application/octet-stream",
}

CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow">
<style>*{box-sizing:border-box;margin:0;padding:0}</style></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">fixture.invalid</h1>
<h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>
<div id="challenge-stage"><div id="cf-chl-widget-x1y2z"></div></div>
<noscript><div id="challenge-error-title">Enable JavaScript and cookies to continue</div></noscript>
</div></div>
<script>(function(){window._cf_chl_opt={cvId:'3',cZone:"fixture.invalid",cType:'managed',
cRay:'8f00fixture0000',cH:'fixture'};var a=document.createElement('script');
a.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f00fixture0000';
document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>
"""


def _page(title: str, text: str) -> bytes:
    return (f"<!DOCTYPE html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>\n").encode()


class FixtureState:
    """Titles, streams, knobs and counters; shared by all handler threads."""

    def __init__(self, *, stream_kind: str = "aes128", duration_s: float = 12.0,
                 segment_s: float = 2.0, video_kbps: int = 800, cache_dir: Path | None = None,
                 sites_map: dict | None = None):
        self.stream_params = {"kind": stream_kind, "duration_s": duration_s,
                              "segment_s": segment_s, "video_kbps": video_kbps}
        self.cache_dir = cache_dir
        self.sites = sites.discover() if sites_map is None else sites_map
        self.root_url = ""
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.titles: dict[str, Title] = {}
        self.streams: dict[str, Stream] = {}
        self._by_uuid: dict[str, str] = {}
        self._seg_index: dict[str, dict[Any, int]] = {}
        self.scenario: dict[str, str] = {}
        self.editions: dict[str, dict[str, tuple[str, ...]]] = {}  # site -> AVID -> editions
        self.faults: dict[str, Any] = dict(FAULT_DEFAULTS)
        self.outage_until = 0.0
        self._reset_stats()

    # -- titles -------------------------------------------------------------------------

    def add_title(self, avid: str, *, stream_kind: str | None = None, duration_s: float | None = None,
                  segment_s: float | None = None, video_kbps: int | None = None,
                  release_date: str | None = None) -> Title:
        """Add (or replace) a title; its stream is generated or taken from the cache.
        ``release_date`` (YYYY-MM-DD) replaces the derived one, e.g. a new release for a listing."""
        from pipeline.avid import parse

        code = parse(avid).code  # only a valid AVID ever becomes a URL path
        p = dict(self.stream_params)
        for k, v in (("kind", stream_kind), ("duration_s", duration_s),
                     ("segment_s", segment_s), ("video_kbps", video_kbps)):
            if v is not None:
                p[k] = v
        stream = make_stream(p["kind"], duration_s=p["duration_s"], segment_s=p["segment_s"],
                             video_kbps=p["video_kbps"], cache_dir=self.cache_dir)
        if stream.byteranges:
            index: dict[Any, int] = {off: i for i, (off, _) in enumerate(stream.byteranges)}
        else:
            index = {name: i for i, name in enumerate(stream.segment_files)}
        with self.lock:
            num_id = self.titles[code].num_id if code in self.titles else 10001 + len(self.titles)
            title = make_title(code, self.root_url, runtime_min=max(1, round(stream.duration_s / 60)),
                               num_id=num_id)
            if release_date is not None:
                title.release_date = release_date
            self.titles[code] = title
            self.streams[code] = stream
            self._by_uuid[title.uuid] = code
            self._seg_index[code] = index
        return title

    def add_edition(self, avid: str, edition: str, sites: tuple[str, ...] | list[str], *,
                    stream_kind: str | None = None, duration_s: float | None = None) -> str:
        """Let ``sites`` have ``edition`` ("C", "UC", "U") of a known title, as a stream of its
        own (by default as long as the title's plus one segment, so a test can tell them apart).
        Returns the stream's key, ``<AVID>-<edition>``: ``/cdn/<key>/master.m3u8`` serves it and
        MissAV pages point at ``/surrit/<uuid_for(key)>/``."""
        from pipeline.avid import parse
        from tools.fixture_site.titles import uuid_for

        code = parse(avid).code
        key = parse(f"{code}-{edition}").full  # only a valid edition ever becomes a URL path
        with self.lock:
            base = self.streams[code]
        p = dict(self.stream_params)
        stream = make_stream(stream_kind or base.kind,
                             duration_s=duration_s or base.duration_s + p["segment_s"],
                             segment_s=p["segment_s"], video_kbps=p["video_kbps"], cache_dir=self.cache_dir)
        if stream.byteranges:
            index: dict[Any, int] = {off: i for i, (off, _) in enumerate(stream.byteranges)}
        else:
            index = {name: i for i, name in enumerate(stream.segment_files)}
        with self.lock:
            self.streams[key] = stream
            self._seg_index[key] = index
            self._by_uuid[uuid_for(key)] = key
            for site in sites:
                have = self.editions.setdefault(site, {}).get(code, ())
                if edition not in have:
                    self.editions[site][code] = (*have, edition)
        return key

    def avid_for_uuid(self, uuid: str) -> str | None:
        return self._by_uuid.get(uuid.lower())

    def segment_index(self, avid: str, name: str, range_start: int | None) -> int | None:
        stream = self.streams[avid]
        if stream.byteranges:
            if name != stream.segment_files[0] or range_start is None:
                return None
            return self._seg_index[avid].get(range_start)
        return self._seg_index[avid].get(name)

    def avid_in(self, text: str) -> str | None:
        """The known AVID a request path/query mentions, if any."""
        low = text.lower()
        with self.lock:
            titles = list(self.titles.items())
        for avid, t in titles:
            a = avid.lower()
            # Substring tests first: compiling regexes for every title on every request
            # cost ~0.5 s a request with 2,000 titles.
            for cand in (a, a.replace("-", "")):
                if cand in low and re.search(rf"(?<![a-z0-9]){re.escape(cand)}(?![0-9])", low):
                    return avid
            num = str(t.num_id)
            if num in low and re.search(rf"(?<![0-9]){num}(?![0-9])", low):
                return avid
        return None

    # -- knobs ---------------------------------------------------------------------------

    def scenario_for(self, site: str, avid: str | None) -> str:
        with self.lock:
            if avid and f"{site}:{avid}" in self.scenario:
                return self.scenario[f"{site}:{avid}"]
            return self.scenario.get(site) or self.scenario.get("*") or "found"

    def set_scenario(self, key: str, scenario: str | None) -> None:
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        site, _, avid = key.partition(":")
        if avid:
            key = f"{site}:{avid.upper()}"
        with self.lock:
            if scenario is None:
                self.scenario.pop(key, None)
            else:
                self.scenario[key] = scenario

    def set_faults(self, knobs: dict[str, Any]) -> None:
        unknown = set(knobs) - set(FAULT_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown fault knob(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(FAULT_DEFAULTS)}")
        clean: dict[str, Any] = {}
        for k, v in knobs.items():
            default = FAULT_DEFAULTS[k]
            if isinstance(default, list):
                if not isinstance(v, list) or not all(isinstance(i, int) for i in v):
                    raise ValueError(f"{k}: expected a list of segment indices")
                clean[k] = list(v)
            elif isinstance(default, bool):
                clean[k] = bool(v)
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError(f"{k}: expected a number ≥ 0, got {v!r}")
                clean[k] = v
        with self.lock:
            self.faults.update(clean)
            if "outage_s" in clean:
                self.outage_until = time.monotonic() + float(clean["outage_s"])

    def apply_control(self, body: dict[str, Any]) -> None:
        """Merge a ``POST /_control`` body; raise ValueError on anything unknown."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        unknown = set(body) - {"scenario", "faults", "titles", "editions"}
        if unknown:
            raise ValueError(f"unknown control key(s) {', '.join(sorted(unknown))}")
        for key, value in (body.get("scenario") or {}).items():
            self.set_scenario(key, value)
        if body.get("faults"):
            self.set_faults(body["faults"])
        for item in body.get("titles") or []:
            if isinstance(item, str):
                self.add_title(item)
            elif isinstance(item, dict) and "avid" in item:
                opts = {k: item[k] for k in ("stream_kind", "duration_s", "segment_s", "video_kbps") if k in item}
                self.add_title(item["avid"], **opts)
            else:
                raise ValueError(f"titles: expected an AVID or {{'avid': ...}}, got {item!r}")
        for item in body.get("editions") or []:
            ok = isinstance(item, dict) and {"avid", "edition", "sites"} <= set(item) \
                and isinstance(item["sites"], list) and item["edition"] in ("C", "UC", "U")
            if not ok or str(item["avid"]).upper() not in self.titles:
                raise ValueError(f"editions: expected {{'avid': <a known title>, 'edition': 'C'|'UC'|'U', "
                                 f"'sites': [names]}}, got {item!r}")
            self.add_edition(item["avid"], item["edition"], item["sites"])

    def control(self) -> dict[str, Any]:
        with self.lock:
            return {
                "editions": {site: {a: list(e) for a, e in per.items()} for site, per in self.editions.items()},
                "scenario": dict(self.scenario),
                "faults": dict(self.faults),
                "outage_remaining_s": round(max(0.0, self.outage_until - time.monotonic()), 3),
                "titles": sorted(self.titles),
                "sites": {n: m.KIND for n, m in sorted(self.sites.items())},
                "site_load_errors": sorted(sites.LOAD_ERRORS),
                "streams": {a: {"kind": s.kind, "segments": s.segments, "duration_s": s.duration_s,
                                "total_bytes": s.total_bytes} for a, s in self.streams.items()},
            }

    def reset(self) -> None:
        with self.lock:
            self.scenario.clear()
            self.faults = dict(FAULT_DEFAULTS)
            self.outage_until = 0.0
            self._reset_stats()

    # -- stats ---------------------------------------------------------------------------

    def _reset_stats(self) -> None:
        self._stats: dict[str, Any] = {
            "requests": {}, "status": {}, "segment_requests": {}, "segments": {},
            "playlists": {}, "keys": {}, "bytes_sent": 0, "bytes_sent_by": {},
        }

    def count(self, category: str) -> None:
        with self.lock:
            r = self._stats["requests"]
            r[category] = r.get(category, 0) + 1

    def count_status(self, status: int) -> None:
        with self.lock:
            s = self._stats["status"]
            s[str(status)] = s.get(str(status), 0) + 1

    def count_segment(self, avid: str, index: int) -> int:
        """Count a segment request; return how many came before it (the attempt number)."""
        with self.lock:
            per = self._stats["segments"].setdefault(avid, {})
            attempt = per.get(str(index), 0)
            per[str(index)] = attempt + 1
            tot = self._stats["segment_requests"]
            tot[avid] = tot.get(avid, 0) + 1
            return attempt

    def count_playlist(self, avid: str, which: str) -> None:
        with self.lock:
            per = self._stats["playlists"].setdefault(avid, {})
            per[which] = per.get(which, 0) + 1

    def count_key(self, avid: str) -> None:
        with self.lock:
            self._stats["keys"][avid] = self._stats["keys"].get(avid, 0) + 1

    def count_bytes(self, category: str, n: int) -> None:
        with self.lock:
            self._stats["bytes_sent"] += n
            by = self._stats["bytes_sent_by"]
            by[category] = by.get(category, 0) + n

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self._stats))


class FixtureHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so ``stop()`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: FixtureState, *, verbose: bool = False):
        self.state = state
        self.verbose = verbose
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        state.root_url = f"http://{host}:{port}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.state.stop.is_set():
            return  # clients hang up mid-body all the time in fault tests
        print(f"fixture_site: error serving {client_address}:", file=sys.stderr)
        traceback.print_exc()

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers, cut keep-alive connections."""
        self.state.stop.set()
        self.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


class _Abort(Exception):
    """Raised inside a handler to drop the connection without (more of) a response."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every keep-alive request
    # then waited ~45 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "fixture-site/1"
    timeout = 120  # idle keep-alive connections go away eventually
    server: FixtureHTTPServer
    _head = False
    _category = "control"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    @property
    def state(self) -> FixtureState:
        return self.server.state

    # -- entry points --------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        self._head, self._category = False, "control"
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path.rstrip("/")
        if path not in ("/_control", "/_control/reset"):
            self._dispatch(head=False)
            return
        try:
            if path == "/_control/reset":
                self.state.reset()
            else:
                self.state.apply_control(json.loads(raw or b"{}"))
        except (ValueError, TypeError) as e:
            self._json(400, {"error": str(e)})
            return
        self._json(200, self.state.control())

    def _dispatch(self, head: bool) -> None:
        self._head = head
        self._category = "other"
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in path.split("/") if p]
        try:
            if path in ("/_control", "/_control/"):
                self._json(200, self.state.control())
            elif path in ("/_stats", "/_stats/"):
                self._json(200, self.state.stats())
            elif parts and parts[0] == "site" and len(parts) >= 2:
                sub = path[len(f"/site/{parts[1]}"):] or "/"
                self._site(parts[1], sub, query, url.query)
            elif parts and parts[0] in CDN_PREFIXES:
                self._cdn(parts)
            elif parts and parts[0] in ("img", "pics"):
                self._image(parts)
            elif not parts:
                self._index()
            else:
                self._send(404, _page("404 Not Found", "no such path on the fixture site"))
        except _Abort:
            self.close_connection = True

    # -- responses -----------------------------------------------------------------------

    def _start(self, status: int, length: int, content_type: str,
               headers: dict[str, str] | None = None) -> None:
        self.state.count_status(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _write(self, data: bytes) -> None:
        if self._head or not data:
            return
        try:
            self.wfile.write(data)
        except OSError:
            raise _Abort() from None
        self.state.count_bytes(self._category, len(data))

    def _send(self, status: int, body: bytes | str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._start(status, len(data), content_type, headers)
        self._write(data)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False, indent=1), "application/json")

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (then drop the connection)."""
        if seconds > 0 and self.state.stop.wait(seconds):
            raise _Abort()

    # -- /site/<name>/... ----------------------------------------------------------------

    def _site(self, name: str, sub: str, query: dict[str, str], raw_query: str) -> None:
        self._category = name
        self.state.count(name)
        module = self.state.sites.get(name)
        if module is None:
            self._send(404, _page("404 Not Found", f"the fixture has no site {name!r}"))
            return
        avid = self.state.avid_in(f"{sub}?{unquote(raw_query)}")
        # A page naming no AVID (a listing) takes a scenario keyed by its path: "<site>:/star/ab/2".
        scenario = self.state.scenario_for(name, avid or sub.upper())
        if scenario in ("challenge_200", "challenge_403"):
            self._send(200 if scenario == "challenge_200" else 403, CHALLENGE_PAGE,
                       headers={"Server": "cloudflare", "cf-mitigated": "challenge",
                                "CF-RAY": "8f00fixture0000-NRT", "Cache-Control": "no-store"})
            return
        if scenario == "blocked_451":
            self._send(451, _page("451 Unavailable For Legal Reasons",
                                  "This content is not available in your region."))
            return
        if scenario == "error_500":
            self._send(500, _page("500 Internal Server Error", "Something went wrong."))
            return
        if scenario == "timeout":
            self._wait(float(self.state.faults["timeout_s"]))
            raise _Abort()  # a client still waiting sees the connection close
        if sub in ("", "/"):
            # Real sites hand out session cookies on their home page; nassav's automatic
            # cookie fetch and the sweep's health probe read it.
            self._send(200, _page(f"{name}", "home page of a fictional site"),
                       headers={"Set-Cookie": f"session_{name}=fixture-{name}-0123456789; Path=/"})
            return
        base_url = f"{self.state.root_url}/site/{name}"
        req = SiteRequest(site=name, path=sub, query=query,
                          headers={k.lower(): v for k, v in self.headers.items()},
                          base_url=base_url, root_url=self.state.root_url, scenario=scenario,
                          titles=dict(self.state.titles), method=self.command,
                          editions=dict(self.state.editions.get(name, {})))
        try:
            reply = module.handle(req)
        except Exception:
            tb = traceback.format_exc()
            print(f"fixture_site: site {name} raised on {sub}:\n{tb}", file=sys.stderr)
            self._send(500, tb, "text/plain; charset=utf-8")
            return
        if reply is None:
            reply = Reply(404, _page("404 Not Found", f"{name}: page not found"))
        self._send(reply.status, reply.body, reply.content_type, reply.headers)

    # -- images --------------------------------------------------------------------------

    def _image(self, parts: list[str]) -> None:
        self._category = "img"
        self.state.count("img")
        data, ctype = None, "image/jpeg"
        if parts[0] == "pics" and len(parts) == 3 and parts[1] == "cover" and parts[2].endswith("_b.jpg"):
            avid = self._known(parts[2][:-len("_b.jpg")])
            data = images.cover_jpeg(avid) if avid else None
        elif parts[0] == "img" and len(parts) == 2 and parts[1] == "nowprinting.gif":
            data, ctype = images.nowprinting_gif(), "image/gif"
        elif parts[0] == "img" and len(parts) == 3 and parts[1] == "actor":
            m = re.fullmatch(r"(\d{1,4})\.jpg", parts[2])
            data = images.actor_jpeg(int(m.group(1))) if m else None
        elif parts[0] == "img" and len(parts) == 3:
            avid = self._known(parts[1])
            m = re.fullmatch(r"sample-(\d{1,3})\.jpg", parts[2])
            if avid and parts[2] == "cover.jpg":
                data = images.cover_jpeg(avid)
            elif avid and m:
                data = images.sample_jpeg(avid, int(m.group(1)))
        if data is None:
            self._send(404, _page("404 Not Found", "no such image"))
        else:
            self._send(200, data, ctype, {"Cache-Control": "max-age=3600"})

    def _known(self, text: str) -> str | None:
        up = text.upper()
        return up if up in self.state.titles or up in self.state.streams else None

    def _index(self) -> None:
        self.state.count("index")
        rows = "".join(f'<li><a href="{t.playlist_url}">{a}</a> {t.title}</li>'
                       for a, t in sorted(self.state.titles.items()))
        links = "".join(f'<li><a href="/site/{n}/">{n}</a> ({m.KIND})</li>'
                        for n, m in sorted(self.state.sites.items()))
        self._send(200, f"<!DOCTYPE html><html><head><title>nassav fixture site</title></head><body>"
                        f"<h1>nassav fixture site</h1><h2>Titles</h2><ul>{rows}</ul>"
                        f"<h2>Sites</h2><ul>{links}</ul></body></html>")

    # -- the CDN -------------------------------------------------------------------------

    def _cdn(self, parts: list[str]) -> None:
        prefix = parts[0]
        self._category = prefix
        self.state.count(prefix)
        avid: str | None
        if prefix == "surrit" and len(parts) >= 2:
            avid, base, rest = self.state.avid_for_uuid(parts[1]), parts[:2], parts[2:]
        elif prefix == "memocdn" and len(parts) >= 3 and parts[1] == "stream":
            avid, base, rest = self._known(parts[2]), parts[:3], parts[3:]
        elif prefix == "cdn" and len(parts) >= 2:
            avid, base, rest = self._known(parts[1]), parts[:2], parts[2:]
        else:
            avid, base, rest = None, parts, []
        with self.state.lock:
            outage = self.state.outage_until > time.monotonic()
        if outage:
            self._send(503, _page("503 Service Unavailable", "CDN outage"),
                       headers={"Retry-After": "1"})
            return
        if avid is None or not rest:
            self._send(404, _page("404 Not Found", "unknown video"))
            return
        stream = self.state.streams[avid]
        variant = None
        if rest[0] in ("v0", "v1") and len(rest) > 1:
            variant, rest = rest[0], rest[1:]
        if len(rest) != 1:
            self._send(404, _page("404 Not Found", "no such file"))
            return
        name = rest[0]
        if variant is None and name in ("master.m3u8", "playlist.m3u8"):
            self.state.count_playlist(avid, "master")
            self._send(200, self._master(stream), _CONTENT_TYPES[".m3u8"])
        elif name == stream.playlist:
            self.state.count_playlist(avid, variant or "media")
            self._send(200, self._media(stream, "/" + "/".join(base + ([variant] if variant else []))),
                       _CONTENT_TYPES[".m3u8"])
        elif name == stream.key_file:
            self.state.count_key(avid)
            self._send(200, stream.key or b"", _CONTENT_TYPES[".bin"])
        elif name in stream.segment_files or name == stream.init_file:
            self._file(avid, stream, name)
        else:
            self._send(404, _page("404 Not Found", "no such file"))

    def _master(self, stream: Stream) -> str:
        # Low variant first: an engine that takes the first variant instead of the best
        # one fetches v0 and the stats show it.
        low = max(1, stream.bandwidth // 4)
        return ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH={low},RESOLUTION={stream.width // 2}x{stream.height // 2}\n"
                "v0/index.m3u8\n"
                f"#EXT-X-STREAM-INF:BANDWIDTH={stream.bandwidth},RESOLUTION={stream.width}x{stream.height}\n"
                "v1/index.m3u8\n")

    def _media(self, stream: Stream, dir_path: str) -> str:
        text = stream.playlist_path.read_text()
        with self.state.lock:
            absolute = bool(self.state.faults["absolute_uris"])
        if not absolute:
            return text
        base = f"{self.state.root_url}{dir_path}/"
        out = []
        for line in text.splitlines():
            if line and not line.startswith("#"):
                line = base + line
            else:
                line = re.sub(r'URI="([^"]+)"', lambda m: f'URI="{base}{m.group(1)}"', line)
            out.append(line)
        return "\n".join(out) + "\n"

    def _file(self, avid: str, stream: Stream, name: str) -> None:
        path = stream.dir / name
        size = path.stat().st_size
        ctype = _CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            parsed = _parse_range(rng, size)
            if parsed is None:
                self._send(416, b"", ctype, {"Content-Range": f"bytes */{size}"})
                return
            start, end = parsed
            status = 206
        headers = {"Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        index = self.state.segment_index(avid, name, start if rng else None)
        if index is None:  # init segment, or the whole byterange file: no faults
            self._start(status, length, ctype, headers)
            self._sendfile(path, start, length)
            return
        self._segment(avid, index, path, start, length, status, ctype, headers)

    def _segment(self, avid: str, index: int, path: Path, start: int, length: int,
                 status: int, ctype: str, headers: dict[str, str]) -> None:
        attempt = self.state.count_segment(avid, index)
        with self.state.lock:
            f = dict(self.state.faults)
        self._wait(float(f["latency_ms"]) / 1000)
        rnd = random.Random(f"{f['seed']}:{avid}:{index}:{attempt}")
        u_error, u_truncate, u_stall = rnd.random(), rnd.random(), rnd.random()
        if index in f["fail_segments"] or u_error < f["error_rate"]:
            self._send(500, _page("500 Internal Server Error", "segment failed"))
            return
        self._start(status, length, ctype, headers)
        rate = int(f["bandwidth_bytes_per_s"])
        if u_truncate < f["truncate_rate"]:
            with path.open("rb") as fh:
                fh.seek(start)
                self._write_throttled(fh.read(length // 2), rate)
            raise _Abort()  # Content-Length promised more: the client sees a short body
        if u_stall < f["stall_rate"]:
            with path.open("rb") as fh:
                fh.seek(start)
                data = fh.read(length)
            self._write_throttled(data[: length // 2], rate)
            self._wait(float(f["stall_s"]))
            self._write_throttled(data[length // 2:], rate)
            return
        if rate:
            with path.open("rb") as fh:
                fh.seek(start)
                self._write_throttled(fh.read(length), rate)
            return
        self._sendfile(path, start, length)

    def _sendfile(self, path: Path, start: int, length: int) -> None:
        if self._head or length <= 0:
            return
        try:
            with path.open("rb") as fh:
                sent = self.connection.sendfile(fh, start, length)
        except OSError:
            raise _Abort() from None
        self.state.count_bytes(self._category, sent)
        if sent < length:
            raise _Abort()

    def _write_throttled(self, data: bytes, rate: int) -> None:
        if not rate:
            self._write(data)
            return
        t0 = time.monotonic()
        for start, end, due_s in pace(len(data), rate):
            self._write(data[start:end])
            self._wait(t0 + due_s - time.monotonic())


def pace(length: int, rate: int) -> list[tuple[int, int, float]]:
    """How a body of ``length`` bytes goes out at ``rate`` bytes/s: ``(start, end, due_s)``
    per chunk, ``due_s`` being when (from the first byte) the chunk is due to have gone out.

    The last chunk is due at exactly ``length / rate``: a short last chunk is not charged as a
    whole one (that overshoot made "2 MB/s" deliver ~1.88 MB/s per 1 MB segment).
    """
    chunk = max(1024, min(65536, rate // 20))
    return [(off, min(off + chunk, length), min(off + chunk, length) / rate)
            for off in range(0, length, chunk)]


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range → (start, end) inclusive, or None when unsatisfiable."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range: the last N bytes
        n = int(m.group(2))
        if n == 0:
            return None
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
