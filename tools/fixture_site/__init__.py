"""The offline fake of the internet that nassav's tests, demos and benchmarks run against.

``FixtureSite.start()`` serves, on one port of 127.0.0.1, fake pages of every source and
catalogue (``/site/<name>/``), an HLS CDN with real ffmpeg-made streams and fault knobs
(``/cdn/<AVID>/``, ``/surrit/<uuid>/``, ``/memocdn/stream/<AVID>/``), images, and a control
API (``/_control``, ``/_stats``). See ``server.py`` for the routes and knobs,
``media.py`` for the streams and ``sites/__init__.py`` for the site handler interface.

    with FixtureSite.start(titles=("DEMO-001", "DEMO-002")) as fx:
        cfg_path = fx.write_config(tmp_path / "nassav.yaml", data_dir=tmp_path / "data")
        fx.set_scenario("missav", "challenge_403")
        fx.set_faults(error_rate=0.2, seed=7)
        ...
        fx.stats()["segments"]["DEMO-001"]   # {"0": 2, "1": 1, ...}
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

import yaml

from tools.fixture_site.media import KINDS, Stream, make_stream
from tools.fixture_site.server import FAULT_DEFAULTS, SCENARIOS, FixtureHTTPServer, FixtureState
from tools.fixture_site.types import Reply, SiteRequest, Title

__all__ = ["FAULT_DEFAULTS", "KINDS", "SCENARIOS", "FixtureSite", "Reply", "SiteRequest", "Stream",
           "Title", "demo_avids", "make_stream", "nassav_config"]


def demo_avids(n: int) -> list[str]:
    """``DEMO-001`` … ``DEMO-00n``."""
    return [f"DEMO-{i:03d}" for i in range(1, n + 1)]


class FixtureSite:
    """The fixture server running in a background thread of this process."""

    def __init__(self, server: FixtureHTTPServer, thread: threading.Thread):
        self._server = server
        self._thread = thread
        self.state: FixtureState = server.state
        self.port: int = server.server_address[1]
        self.base_url: str = server.state.root_url

    @classmethod
    def start(cls, *, host: str = "127.0.0.1", port: int = 0, titles: Iterable[str] = ("DEMO-001",),
              stream_kind: str = "aes128", duration_s: float = 12.0, segment_s: float = 2.0,
              video_kbps: int = 800, cache_dir: Path | None = None,
              verbose: bool = False) -> "FixtureSite":
        """Bind (``port=0`` picks a free port), make the titles' stream, start serving.

        All titles share one generated stream; generation is cached (see ``media.py``).
        """
        state = FixtureState(stream_kind=stream_kind, duration_s=duration_s, segment_s=segment_s,
                             video_kbps=video_kbps, cache_dir=cache_dir)
        server = FixtureHTTPServer((host, port), state, verbose=verbose)
        try:
            for avid in titles:
                state.add_title(avid)
        except BaseException:
            server.server_close()
            raise
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"fixture-site-{server.server_address[1]}", daemon=True)
        thread.start()
        return cls(server, thread)

    # -- URLs and config -----------------------------------------------------------------

    def site_url(self, name: str) -> str:
        """The base URL a nassav config uses for site ``name``."""
        return f"{self.base_url}/site/{name}"

    def title(self, avid: str) -> Title:
        return self.state.titles[avid.upper()]

    @property
    def titles(self) -> dict[str, Title]:
        return dict(self.state.titles)

    def add_title(self, avid: str, *, stream_kind: str | None = None, duration_s: float | None = None,
                  segment_s: float | None = None, video_kbps: int | None = None,
                  release_date: str | None = None) -> Title:
        """Add a title, optionally with a stream of its own kind or size (or a release date)."""
        return self.state.add_title(avid, stream_kind=stream_kind, duration_s=duration_s,
                                    segment_s=segment_s, video_kbps=video_kbps, release_date=release_date)

    def add_edition(self, avid: str, edition: str, sites: tuple[str, ...] | list[str], *,
                    duration_s: float | None = None) -> str:
        """Let ``sites`` (e.g. ``("jable",)``) have ``edition`` of a known title; see
        :meth:`FixtureState.add_edition`. Returns the edition stream's key (``DEMO-001-C``)."""
        return self.state.add_edition(avid, edition, sites, duration_s=duration_s)

    def write_config(self, path: str | Path, *, data_dir: str | Path | None = None,
                     redis_url: str | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write a nassav YAML config pointing every source and catalogue at this server."""
        cfg = nassav_config(self.base_url, data_dir=data_dir, redis_url=redis_url, extra=extra)
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return p

    # -- knobs and counters --------------------------------------------------------------

    def set_scenario(self, site: str, scenario: str | None, avid: str | None = None) -> None:
        """``scenario`` for ``site`` (or ``"*"``), for one AVID when given; None clears it."""
        self.state.set_scenario(f"{site}:{avid}" if avid else site, scenario)

    def set_faults(self, **knobs: Any) -> None:
        """Merge CDN fault knobs (see ``server.FAULT_DEFAULTS``)."""
        self.state.set_faults(knobs)

    def reset(self) -> None:
        """Clear scenarios, faults and stats (titles stay)."""
        self.state.reset()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def stream(self, avid: str) -> Stream:
        return self.state.streams[avid.upper()]

    # -- lifetime ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving and cut open connections; safe to call twice."""
        if self.state.stop.is_set():
            return
        self._server.stop()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FixtureSite":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nassav_config(root_url: str, *, data_dir: str | Path | None = None, redis_url: str | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config mapping (keys of ``pipeline.config.Config``) for a fixture at ``root_url``."""
    from pipeline.config import DEFAULT_CATALOGUES, DEFAULT_SOURCES

    def table(defaults: dict) -> dict[str, Any]:
        return {name: {"base_url": f"{root_url}/site/{name}", "weight": sc.weight, "enabled": True,
                       "min_interval_s": 0} for name, sc in defaults.items()}

    cfg: dict[str, Any] = {}
    if data_dir is not None:
        cfg["data_dir"] = str(data_dir)
    if redis_url is not None:
        cfg["redis_url"] = redis_url
    cfg["http"] = {"allow_private_urls": True, "timeout_s": 10, "retries": 1}
    cfg["sources"] = table(DEFAULT_SOURCES)
    cfg["catalogues"] = table(DEFAULT_CATALOGUES)
    if "missav" in cfg["sources"]:
        cfg["sources"]["missav"]["cdn_url"] = f"{root_url}/surrit"
    if "memo" in cfg["sources"]:
        cfg["sources"]["memo"]["cdn_url"] = f"{root_url}/memocdn"
    return _deep_merge(cfg, extra or {})


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
