"""Configuration: one YAML file, a few environment overrides, strict validation.

``load(path, environ)`` returns a frozen :class:`Config`. A wrong key or type raises
:class:`ConfigError` naming the key and what was expected. Nothing here reads the
environment at import time: callers pass ``environ`` in.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.editions import check as check_editions
from pipeline.errors import ConfigError
from pipeline.files import FILE_MODE_FORM, parse_file_mode
from pipeline.redis_client import SENTINEL_FORM, RedisUrlError, is_sentinel, parse_sentinel, redact
from pipeline.urlcheck import SITE_URL_FORM, site_url_problem

# Impersonation profile and the User-Agent that agrees with its TLS fingerprint.
# A UA that disagrees with the fingerprint gets blocked more (FIELD_NOTES §1).
IMPERSONATE_UA = {
    "chrome124": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "chrome131": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "chrome120": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "chrome110": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36",
    "safari17_0": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    "firefox133": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
}


@dataclass(frozen=True)
class SourceConfig:
    """One video source or catalogue site."""

    base_url: str = ""
    weight: int = 0
    enabled: bool = True
    min_interval_s: float = 0.5  # pacing between two requests to this site
    # Where a site's video CDN lives when the playlist URL is built rather than read
    # from the page (MissAV's surrit.com, Memo's video10.memojav.net). Empty = the real one.
    cdn_url: str = ""

    @property
    def active(self) -> bool:
        return self.enabled and self.weight > 0 and bool(self.base_url)


DEFAULT_SOURCES = {
    "missav": SourceConfig("https://missav.ws", 100),
    "jable": SourceConfig("https://jable.tv", 90),
    "memo": SourceConfig("https://memojav.com", 80),
    "netflav": SourceConfig("https://netflav.com", 70),
    "hohoj": SourceConfig("https://hohoj.tv", 60),
    "kanav": SourceConfig("https://kanav.info", 50),
    "ggjav": SourceConfig("https://ggjav.com", 40),
    "avtoday": SourceConfig("https://avtoday.io", 30),
}

DEFAULT_CATALOGUES = {
    "javbus": SourceConfig("https://www.javbus.com", 100),
    "busdmm": SourceConfig("https://www.busdmm.bond", 90),
    "dmmsee": SourceConfig("https://www.dmmsee.bond", 80),
}


@dataclass(frozen=True)
class HttpConfig:
    impersonate: str = "chrome124"
    proxy: str | None = None
    timeout_s: float = 30.0
    retries: int = 2
    # URLs found in fetched pages may point to loopback/private addresses only when
    # this is on (the offline fixture site needs it; real deployments should not).
    allow_private_urls: bool = False

    @property
    def user_agent(self) -> str:
        return IMPERSONATE_UA[self.impersonate]


@dataclass(frozen=True)
class BandwidthWindow:
    """A cap on each download's rate in force during a daily window (see ``pipeline/schedule.py``)."""

    hours: str = ""  # "08:00-23:00"
    limit: Any = ""  # "2MiB/s", or bytes per second as a number; Any: _check names the form


@dataclass(frozen=True)
class DownloadConfig:
    concurrency: int = 16
    segment_retries: int = 5
    stall_timeout_s: float = 30.0
    speed_limit_bytes_per_s: int = 0  # 0 = unlimited
    ad_segment_regex: str | None = None
    keep_parts: bool = False
    playlist_max_age_s: int = 1800  # older resolved playlist URLs are re-resolved
    mutex_limit: int = 1  # downloads at once across all machines
    mutex_ttl_ms: int = 30_000
    time_limit_s: int = 6 * 3600
    max_retries: int = 3
    ffmpeg: str | None = None  # None = the ffmpeg that imageio-ffmpeg ships
    variant: str = "highest"  # highest | lowest | a max height such as "720"
    # Disk and schedule (pipeline/download_gate.py): below min_free_gb free under the data dir
    # downloads wait (0 = never); outside ``hours`` ("01:00-07:00", empty = always) they wait;
    # ``bandwidth`` caps each download's rate during given windows. A waiting download gives its
    # message back to the queue after pause_resend_s, so no wait meets the stage's time limit.
    min_free_gb: float = 5.0
    hours: str = ""
    bandwidth: tuple[BandwidthWindow, ...] = ()
    # The zone ``hours`` and ``bandwidth`` are read in: an IANA name such as "Asia/Shanghai";
    # empty = the server's local time (its TZ).
    timezone: str = ""
    pause_resend_s: float = 600.0
    # Acceptable editions, most preferred first (pipeline/editions.py): C, UC, U, regular.
    editions: tuple[str, ...] = ("C", "regular")
    # How often a worker looks for a more preferred edition of the library's videos; 0 = never.
    upgrade_check_interval_s: float = 0.0


@dataclass(frozen=True)
class WorkerConfig:
    metadata_threads: int = 4
    download_threads: int = 1
    heartbeat_timeout_ms: int = 15_000
    # 1 in N broker calls runs the requeue maintenance (dramatiq's default is 1 in 1000,
    # which with the 60 s heartbeat brought a killed worker's message back after ~300 s;
    # 1 in 20 still left a tail past 30 s in the fault suite).
    maintenance_one_in: int = 10
    worker_timeout_ms: int = 100
    stage_time_limit_s: int = 300
    stage_max_retries: int = 3
    sweep_interval_s: float = 60.0  # 0 disables the periodic sweep in this worker


@dataclass(frozen=True)
class SubscriptionsConfig:
    """How workers check followed actresses, makers, labels, series, directors and searches."""

    # How often each subscription is checked, unless it sets its own interval; every next
    # check is moved by up to ±jitter of it, so many subscriptions do not fire together.
    interval_s: float = 43_200.0
    jitter: float = 0.1
    # How often a worker looks for subscriptions that are due; 0 = this worker checks none.
    tick_s: float = 30.0
    # Listing pages one check may read (30 titles a page on JavBus).
    max_pages: int = 20
    # Titles a new subscription's first check may queue, unless it sets its own backfill.
    backfill: int = 20
    # Check records kept per subscription (GET /api/subscriptions/{id}).
    checks_kept: int = 20


@dataclass(frozen=True)
class LibraryConfig:
    write_nfo: bool = True
    write_poster: bool = True
    extrafanart: bool = False
    actor_photos: bool = False
    # The exact mode of library files as written: "0664", YAML's 0640 (an int), or None for
    # 0666 & ~umask. Any: _check validates it whole, so every wrong value gets the message
    # naming the accepted form. Not in the HTTP settings subset: it can widen who reads the library.
    file_mode: Any = None
    # Folders POST /api/library/import may import from (absolute paths, and folders below
    # them); empty = API import disabled. `nassav import` on the command line may import any folder.
    import_roots: tuple[str, ...] = ()

    @property
    def file_mode_bits(self) -> int | None:
        """``file_mode`` as permission bits (checked by ``load``)."""
        return parse_file_mode(self.file_mode)


DISPLAY_TITLES = ("original_title", "source_title", "translated_title")


@dataclass(frozen=True)
class UiConfig:
    """How a client shows the library: the original client's settings page, stored here."""

    enable_avatar: bool = True
    display_title: str = "source_title"  # one of DISPLAY_TITLES
    # Put before a video's absolute path where a client asks for it (the original client's
    # "copy path" action), e.g. "smb://nas" when clients reach the library over a share.
    file_path_prefix: str = ""


TRANSLATION_FIELDS = ("title", "plot")
NFO_TITLES = ("translated", "original")
CHINESE_CONVERSIONS = ("none", "t2s")


@dataclass(frozen=True)
class TranslationConfig:
    """Titles people can read: an optional translator and an optional Chinese script conversion.

    The translator is any OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp's
    server, hosted APIs); it is on when ``url`` and ``model`` are set. It is the user's own
    endpoint, usually on loopback, so it is reached even without ``http.allow_private_urls``.
    """

    url: str = ""  # e.g. http://127.0.0.1:11434/v1/chat/completions; empty = no translation
    model: str = ""
    # Sent as "Authorization: Bearer …"; never logged, never in events or the settings API.
    api_key: str | None = field(default=None, repr=False)
    target_language: str = "Simplified Chinese"
    # Per request; a slow translator leaves the field untranslated, it never fails the job.
    timeout_s: float = 30.0
    fields: tuple[str, ...] = TRANSLATION_FIELDS  # of TRANSLATION_FIELDS
    nfo_title: str = "translated"  # one of NFO_TITLES: the NFO's <title>
    # "t2s": Traditional → Simplified (OpenCC) of title, genres, label, series and studio.
    chinese_conversion: str = "none"  # one of CHINESE_CONVERSIONS

    @property
    def enabled(self) -> bool:
        """A translator is configured."""
        return bool(self.url and self.model)


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway's HTTP server and Redis client hold up under load and slow clients."""

    # A request's headers must arrive complete within this many seconds of the connection
    # opening (or of the previous answer on a kept-alive connection, after its idle time):
    # uvicorn has no such timeout, and a client sending a byte every few seconds held a
    # connection forever.
    header_timeout_s: float = 10.0
    # Open HTTP connections (and WebSocket sessions) at once; above it, requests get 503.
    max_connections: int = 1000
    # Redis connections of the gateway (two stay with the live-event relay and the index
    # projection); a request waits up to redis_pool_timeout_s for a free one.
    redis_pool_size: int = 64
    redis_pool_timeout_s: float = 10.0
    # With a redis+sentinel:// URL only: before answering 202 the gateway WAITs until this many
    # replicas hold the new job, for at most redis_wait_timeout_ms (Redis replicates
    # asynchronously: a failover loses what the replica had not received). 0 = do not wait.
    redis_wait_replicas: int = 1
    redis_wait_timeout_ms: int = 1000
    # Gateway processes serving the one port (each binds it with SO_REUSEPORT; Linux): ingest
    # then uses more than one core. One of them at a time keeps the SQLite library index,
    # elected by a Redis lease of index_lease_ttl_s (renewed every third of it); the others
    # read the index, and one of them takes over within that TTL when the keeper dies.
    processes: int = 1
    index_lease_ttl_s: float = 10.0


# What a notification template may name: {avid} and the rest, filled per event.
TEMPLATE_FIELDS = ("summary", "event", "avid", "title", "reason", "cover_url", "source", "state",
                   "message", "job_id")
NOTIFY_KINDS = ("webhook", "apprise")
# Job kinds whose task_completed/task_failed a target gets only when it names them with the kind
# ("task_completed:import"): an import's titles, which its import_finished reports in one message.
QUIET_JOB_KINDS = ("import",)
MEDIA_SERVER_KINDS = ("jellyfin", "emby", "plex")


@dataclass(frozen=True)
class NotifyTemplate:
    """The message of a notification; ``{field}`` names one of TEMPLATE_FIELDS."""

    title: str = "nassav: {summary}"
    body: str = "{title}\n{reason}\n{cover_url}"


@dataclass(frozen=True)
class NotifyTarget:
    """Where notifications go: a webhook (JSON POST signed with ``secret``) or Apprise URLs."""

    name: str = ""
    kind: str = "webhook"  # one of NOTIFY_KINDS
    # The URLs carry tokens (tgram://BOT_TOKEN/…, a Discord webhook's path): not in the repr.
    url: str = field(default="", repr=False)  # the webhook, or one Apprise URL (tgram://…, discord://…, ntfy://…, mailto://…)
    urls: tuple[str, ...] = field(default=(), repr=False)  # more Apprise URLs, all sent the same message
    secret: str | None = field(default=None, repr=False)  # webhook: the HMAC-SHA256 key of X-Nassav-Signature
    # Event types from the event stream (pipeline/events.py and the helpers that add
    # disk_low/disk_ok, subscription_found…); "source_health" is a source going into back-off or out.
    # An import's titles are not notified one by one (import_finished reports the run) unless
    # named with their kind: "task_completed:import" (pipeline/notify_match.py).
    events: tuple[str, ...] = ("task_completed", "task_failed", "import_finished")
    template: NotifyTemplate = field(default_factory=NotifyTemplate)


@dataclass(frozen=True)
class NotifyConfig:
    targets: tuple[NotifyTarget, ...] = ()
    # Where the gateway is reached from a phone or a chat ("http://nas:8000"): makes cover_url.
    public_url: str = ""
    max_attempts: int = 5  # tries of one delivery before it is reported failed
    min_backoff_s: float = 5.0  # wait after the first failure, doubling up to max_backoff_s
    max_backoff_s: float = 300.0
    timeout_s: float = 10.0
    deliveries_kept: int = 500  # delivery records the API shows (oldest dropped)
    # A delivery queued/retrying untouched this long is sent again once, then marked lost;
    # 0: max_backoff_s + one attempt's time limit + 120 s (pipeline/notify_recover.py).
    recover_after_s: float = 0.0


@dataclass(frozen=True)
class MediaServerConfig:
    """A Jellyfin/Emby/Plex server asked to rescan a title's folder after it lands."""

    name: str = ""
    kind: str = ""  # one of MEDIA_SERVER_KINDS
    url: str = ""  # http://jellyfin:8096
    # Secrets: never in a repr (a logged or printed config), like translation.api_key.
    api_key: str | None = field(default=None, repr=False)  # Jellyfin / Emby
    token: str | None = field(default=None, repr=False)  # Plex (X-Plex-Token)
    section: Any = ""  # Plex: the library section id (3 or "3")
    # The data dir as the server sees it: {"/data/av": "/media/av"} (longest prefix wins).
    path_map: Mapping[str, str] = field(default_factory=dict)
    # After which events (with an AVID) the folder is rescanned: a download, import or upgrade
    # ends with task_completed.
    events: tuple[str, ...] = ("task_completed",)


@dataclass(frozen=True)
class Config:
    data_dir: str = "resource"
    # Both may hold secrets (a Redis or Sentinel password, the API token): kept out of the repr.
    redis_url: str | None = field(default=None, repr=False)  # None = start an embedded Redis under data_dir
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    # Host names the gateway answers besides loopback ones (exact, or "*.example.com" for the
    # names below example.com); any other Host header gets 400 (DNS rebinding). IP literals
    # are accepted when bound beyond loopback.
    allowed_hosts: tuple[str, ...] = ()
    # Wrong API tokens one client address may send within auth_fail_window_s before it gets
    # 429 until the window has passed. Behind a reverse proxy every client shares its address.
    auth_fail_limit: int = 10
    auth_fail_window_s: float = 60.0
    log_level: str = "INFO"
    log_json: bool = False
    events_maxlen: int = 100_000
    # Live-event connections (WebSocket + SSE) one client address may hold; 0 = no limit.
    # Behind a reverse proxy every client shares the proxy's address: raise it there.
    ws_max_per_client: int = 64
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    workers: WorkerConfig = field(default_factory=WorkerConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    sources: Mapping[str, SourceConfig] = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    catalogues: Mapping[str, SourceConfig] = field(default_factory=lambda: dict(DEFAULT_CATALOGUES))
    subscriptions: SubscriptionsConfig = field(default_factory=SubscriptionsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    media_servers: tuple[MediaServerConfig, ...] = ()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def sources_by_weight(self) -> list[tuple[str, SourceConfig]]:
        """Active sources, highest weight first."""
        act = [(n, s) for n, s in self.sources.items() if s.active]
        return sorted(act, key=lambda kv: -kv[1].weight)

    def catalogues_by_weight(self) -> list[tuple[str, SourceConfig]]:
        act = [(n, s) for n, s in self.catalogues.items() if s.active]
        return sorted(act, key=lambda kv: -kv[1].weight)


ENV_OVERRIDES = {
    "NASSAV_REDIS_URL": "redis_url",
    "REDIS_URL": "redis_url",
    "NASSAV_DATA_DIR": "data_dir",
    "NASSAV_HOST": "host",
    "NASSAV_PORT": "port",
    "NASSAV_API_TOKEN": "api_token",
}


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
         **overrides: Any) -> Config:
    """Read ``path`` (optional), apply environment then keyword overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(str(path), "a readable YAML file", e.strerror) from None
        import yaml  # here, not at the top: commands that never read a file (nassav hls) skip it

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "?"
            raise ConfigError(f"{path} {where}", "valid YAML", str(getattr(e, "problem", e))) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(str(path), "a mapping at the top level", type(loaded).__name__)
        raw = loaded
    # NASSAV_REDIS_URL wins over the generic REDIS_URL.
    for env_key in ("REDIS_URL", "NASSAV_REDIS_URL", "NASSAV_DATA_DIR", "NASSAV_HOST",
                    "NASSAV_PORT", "NASSAV_API_TOKEN"):
        if environ and environ.get(env_key):
            value: Any = environ[env_key]
            if ENV_OVERRIDES[env_key] == "port":
                try:
                    value = int(value)
                except ValueError:
                    raise ConfigError(env_key, "an integer port", value) from None
            raw[ENV_OVERRIDES[env_key]] = value
    for k, v in overrides.items():
        if v is not None:
            raw[k] = v
    if environ and environ.get("NASSAV_TRANSLATION_API_KEY"):  # a secret is better kept out of the file
        section = raw.get("translation")
        raw["translation"] = {**(section if isinstance(section, dict) else {}),
                              "api_key": environ["NASSAV_TRANSLATION_API_KEY"]}
    cfg = _build(Config, _drop_retired(raw), "")
    _check(cfg)
    return cfg


def _drop_retired(raw: dict[str, Any]) -> dict[str, Any]:
    """Forget ``download.backend: builtin``: the key is gone (the built-in engine is the only
    downloader), but it was the one value a config could hold, so configs written from the
    earlier template still load. Any other value stays, and is refused as an unknown key."""
    d = raw.get("download")
    if isinstance(d, dict) and d.get("backend") == "builtin":
        return {**raw, "download": {k: v for k, v in d.items() if k != "backend"}}
    return raw


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "(top level)", "a mapping", raw)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"{prefix}{key}", f"one of {', '.join(sorted(names))} (unknown key)")
        if cls is Config and key in ("sources", "catalogues") and isinstance(value, dict):
            value = _merge_sites(DEFAULT_SOURCES if key == "sources" else DEFAULT_CATALOGUES, value)
        values[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**values)


def _merge_sites(defaults: Mapping[str, SourceConfig], raw: dict) -> dict:
    """A config may mention one source, or one key of one source: the rest keeps its default."""
    merged: dict[str, Any] = {n: dataclasses.asdict(c) for n, c in defaults.items()}
    for name, settings in raw.items():
        if isinstance(settings, dict) and name in merged:
            merged[name] = {**merged[name], **settings}
        else:
            merged[name] = settings
    return merged


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin in (Mapping, dict, collections.abc.Mapping) or tp is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(key, "a mapping of name → settings", value)
        vt = args[1] if args else Any
        return {str(k): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(key, "a list of mappings" if dataclasses.is_dataclass(args[0]) else "a list of strings",
                              value)
        return tuple(_coerce(args[0], v, key) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, "a string", value)
        return value
    return value


_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_PATTERN = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*\.?$|^\[?[0-9a-f:.]+\]?$")
_ORIGIN = re.compile(r"^https?://[^/?#@\s]+$")


def _check(cfg: Config) -> None:
    if not 0 < cfg.port < 65536:
        raise ConfigError("port", "an integer between 1 and 65535", cfg.port)
    _check_gateway(cfg.gateway)
    _check_subscriptions(cfg.subscriptions)
    if cfg.http.impersonate not in IMPERSONATE_UA:
        raise ConfigError("http.impersonate", f"one of {', '.join(IMPERSONATE_UA)}", cfg.http.impersonate)
    if cfg.download.concurrency < 1 or cfg.download.concurrency > 128:
        raise ConfigError("download.concurrency", "an integer from 1 to 128", cfg.download.concurrency)
    if cfg.download.mutex_limit < 1:
        raise ConfigError("download.mutex_limit", "an integer ≥ 1", cfg.download.mutex_limit)
    if not 1000 <= cfg.download.mutex_ttl_ms <= 60_000:
        raise ConfigError("download.mutex_ttl_ms", "milliseconds from 1000 to 60000", cfg.download.mutex_ttl_ms)
    if cfg.redis_url is not None and not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
        if not is_sentinel(cfg.redis_url):
            raise ConfigError("redis_url", f"a redis://, rediss:// or unix:// URL, or {SENTINEL_FORM}",
                              redact(cfg.redis_url))
        try:
            parse_sentinel(cfg.redis_url)
        except RedisUrlError as e:
            raise ConfigError("redis_url", f"{SENTINEL_FORM}: {e.why}", redact(cfg.redis_url)) from None
    for entry in cfg.allowed_hosts:
        if not _HOST_PATTERN.match(entry.strip().lower()):
            raise ConfigError("allowed_hosts", "host names (nas.example.com), wildcards below a name "
                              "(*.example.com) or IP addresses, without scheme, port or path", entry)
    for origin in cfg.cors_origins:
        if not _ORIGIN.match(origin.strip().lower()):
            raise ConfigError("cors_origins", "origins such as http://nas.local:8080 (scheme, host, "
                              "optional port; no path)", origin)
    if not 1 <= cfg.auth_fail_limit <= 10_000:
        raise ConfigError("auth_fail_limit", "an integer from 1 to 10000", cfg.auth_fail_limit)
    if not 1 <= cfg.auth_fail_window_s <= 86_400:
        raise ConfigError("auth_fail_window_s", "seconds from 1 to 86400", cfg.auth_fail_window_s)
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level", "DEBUG, INFO, WARNING or ERROR", cfg.log_level)
    if cfg.ui.display_title not in DISPLAY_TITLES:
        raise ConfigError("ui.display_title", f"one of {', '.join(DISPLAY_TITLES)}", cfg.ui.display_title)
    try:
        cfg.library.file_mode_bits
    except ValueError as e:
        raise ConfigError("library.file_mode", f"{FILE_MODE_FORM}; {e}", cfg.library.file_mode) from None
    _check_translation(cfg.translation)
    for root in cfg.library.import_roots:
        if not root.startswith("/"):
            raise ConfigError("library.import_roots", "absolute folder paths such as /srv/old-collection", root)
    _bound("http.timeout_s", cfg.http.timeout_s, 0, 600, "seconds, more than 0 and at most 600", low_open=True)
    _bound("http.retries", cfg.http.retries, 0, 10, "an integer from 0 to 10")
    d = cfg.download
    _bound("download.segment_retries", d.segment_retries, 0, 20, "an integer from 0 to 20")
    _bound("download.max_retries", d.max_retries, 0, 20, "an integer from 0 to 20")
    _bound("download.stall_timeout_s", d.stall_timeout_s, 0, 600, "seconds, more than 0 and at most 600",
           low_open=True)
    _bound("download.speed_limit_bytes_per_s", d.speed_limit_bytes_per_s, 0, 10 ** 12,
           "bytes per second from 0 (unlimited) to 10^12")
    _bound("download.playlist_max_age_s", d.playlist_max_age_s, 0, 7 * 86400,
           "seconds from 0 to 604800 (a week)")
    _bound("download.mutex_limit", d.mutex_limit, 1, 64, "an integer from 1 to 64")
    _bound("download.time_limit_s", d.time_limit_s, 1, 7 * 86400, "seconds from 1 to 604800 (a week)")
    _check_disk_and_schedule(d)
    check_editions(d.editions)
    _bound("download.upgrade_check_interval_s", d.upgrade_check_interval_s, 0, 30 * 86400,
           "seconds from 0 (never) to 2592000 (30 days)")
    if not _variant_ok(d.variant):
        raise ConfigError("download.variant", 'highest, lowest or a maximum height from 1 to 4320 such as "720"',
                          d.variant)
    for table in ("sources", "catalogues"):
        for name, s in getattr(cfg, table).items():
            for key in ("base_url", "cdn_url"):
                problem = site_url_problem(getattr(s, key))
                if problem:
                    raise ConfigError(f"{table}.{name}.{key}", f"{SITE_URL_FORM} ({problem})", getattr(s, key))
            _bound(f"{table}.{name}.weight", s.weight, 0, 1000, "an integer from 0 to 1000")
            _bound(f"{table}.{name}.min_interval_s", s.min_interval_s, 0, 60, "seconds from 0 to 60")
    _check_notify(cfg.notify)
    _check_media_servers(cfg.media_servers)


def _check_subscriptions(s: SubscriptionsConfig) -> None:
    _bound("subscriptions.interval_s", s.interval_s, 60, 30 * 86400, "seconds from 60 to 2592000 (30 days)")
    _bound("subscriptions.jitter", s.jitter, 0, 0.5, "a fraction from 0 to 0.5")
    _bound("subscriptions.tick_s", s.tick_s, 0, 3600, "seconds from 0 (off) to 3600")
    _bound("subscriptions.max_pages", s.max_pages, 1, 500, "an integer from 1 to 500")
    _bound("subscriptions.backfill", s.backfill, 0, 10_000, "an integer from 0 to 10000")
    _bound("subscriptions.checks_kept", s.checks_kept, 1, 1000, "an integer from 1 to 1000")


_VARIANT = re.compile(r"highest|lowest|(\d{1,4})p?")


def _variant_ok(text: str) -> bool:
    """The forms ``choose_variant`` reads: highest, lowest, or a height such as 720 / 720p."""
    m = _VARIANT.fullmatch(text.strip().lower())
    return m is not None and (m.group(1) is None or 1 <= int(m.group(1)) <= 4320)


def _bound(key: str, value: float, low: float, high: float, expected: str, *, low_open: bool = False) -> None:
    """Raise unless ``low <= value <= high`` (``low < value`` when ``low_open``); NaN never fits."""
    fits = (low < value if low_open else low <= value) and value <= high
    if not fits:
        raise ConfigError(key, expected, value)


def _check_disk_and_schedule(d: DownloadConfig) -> None:
    from pipeline.schedule import RATE_FORM, TIMEZONE_FORM, WINDOW_FORM, parse_rate, parse_window, parse_zone

    _bound("download.min_free_gb", d.min_free_gb, 0, 10 ** 7, "gigabytes from 0 (no guard) to 10000000")
    _bound("download.pause_resend_s", d.pause_resend_s, 1, 86_400, "seconds from 1 to 86400")
    if d.hours.strip():
        try:
            parse_window(d.hours)
        except ValueError as e:
            raise ConfigError("download.hours", f"empty (always) or {WINDOW_FORM}; {e}", d.hours) from None
    try:
        parse_zone(d.timezone)
    except ValueError as e:
        raise ConfigError("download.timezone", f"{TIMEZONE_FORM}; {e}", d.timezone) from None
    for n, b in enumerate(d.bandwidth):
        key = f"download.bandwidth[{n}]"
        try:
            parse_window(b.hours)
        except ValueError as e:
            raise ConfigError(f"{key}.hours", f"{WINDOW_FORM}; {e}", b.hours) from None
        try:
            parse_rate(b.limit)
        except ValueError as e:
            raise ConfigError(f"{key}.limit", f"{RATE_FORM}; {e}", b.limit) from None


def with_processes(cfg: Config, processes: int) -> Config:
    """``cfg`` with ``gateway.processes`` set (``--processes N``), validated like the file's."""
    g = dataclasses.replace(cfg.gateway, processes=processes)
    _check_gateway(g)
    return dataclasses.replace(cfg, gateway=g)


def _check_gateway(g: GatewayConfig) -> None:
    _bound("gateway.header_timeout_s", g.header_timeout_s, 1, 300, "seconds from 1 to 300")
    _bound("gateway.max_connections", g.max_connections, 16, 100_000, "an integer from 16 to 100000")
    _bound("gateway.redis_wait_replicas", g.redis_wait_replicas, 0, 16, "an integer from 0 to 16")
    _bound("gateway.redis_wait_timeout_ms", g.redis_wait_timeout_ms, 10, 60_000, "milliseconds from 10 to 60000")
    _bound("gateway.redis_pool_size", g.redis_pool_size, 4, 10_000, "an integer from 4 to 10000")
    _bound("gateway.redis_pool_timeout_s", g.redis_pool_timeout_s, 0.1, 120, "seconds from 0.1 to 120")
    _bound("gateway.processes", g.processes, 1, 64, "an integer from 1 to 64")
    _bound("gateway.index_lease_ttl_s", g.index_lease_ttl_s, 1, 300, "seconds from 1 to 300")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_translation(t: TranslationConfig) -> None:
    problem = site_url_problem(t.url)
    if problem:
        raise ConfigError("translation.url", f"an OpenAI-compatible chat-completions URL such as "
                          f"http://127.0.0.1:11434/v1/chat/completions: {SITE_URL_FORM} ({problem})", t.url)
    if bool(t.url) != bool(t.model):
        raise ConfigError("translation.model" if t.url else "translation.url",
                          "both translation.url and translation.model, or neither (no translation)")
    if _CONTROL.search(t.model) or len(t.model) > 200:
        raise ConfigError("translation.model", "a model name (at most 200 characters, no control characters)",
                          t.model)
    if t.api_key is not None and (not t.api_key or _CONTROL.search(t.api_key)):
        # The value is a secret: the message never shows it.
        raise ConfigError("translation.api_key", "a non-empty key without control characters or line breaks, "
                          "or no key at all")
    if not t.target_language.strip() or _CONTROL.search(t.target_language) or len(t.target_language) > 100:
        raise ConfigError("translation.target_language",
                          'a language name such as "Simplified Chinese" (at most 100 characters)', t.target_language)
    _bound("translation.timeout_s", t.timeout_s, 0, 120, "seconds, more than 0 and at most 120", low_open=True)
    wrong = [f for f in t.fields if f not in TRANSLATION_FIELDS]
    if wrong or len(set(t.fields)) != len(t.fields):
        raise ConfigError("translation.fields", f"a list of {' and '.join(TRANSLATION_FIELDS)} without repeats",
                          list(t.fields))
    if t.nfo_title not in NFO_TITLES:
        raise ConfigError("translation.nfo_title", f"one of {', '.join(NFO_TITLES)}", t.nfo_title)
    if t.chinese_conversion not in CHINESE_CONVERSIONS:
        raise ConfigError("translation.chinese_conversion",
                          f"one of {', '.join(CHINESE_CONVERSIONS)} (t2s: Traditional to Simplified Chinese)",
                          t.chinese_conversion)


_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def template_problem(text: str) -> str:
    """Why ``text`` is no notification template; empty when it is one."""
    for name in _TEMPLATE_FIELD.findall(text):
        if name not in TEMPLATE_FIELDS:
            return f"unknown field {{{name}}}"
    return ""


# An event type, or a job's event of one kind ("task_completed:import").
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?")


def _check_notify(n: NotifyConfig) -> None:
    _bound("notify.max_attempts", n.max_attempts, 1, 50, "an integer from 1 to 50")
    _bound("notify.min_backoff_s", n.min_backoff_s, 0, 3600, "seconds from 0 to 3600")
    _bound("notify.max_backoff_s", n.max_backoff_s, n.min_backoff_s, 86_400,
           "seconds from notify.min_backoff_s to 86400")
    _bound("notify.timeout_s", n.timeout_s, 0, 120, "seconds, more than 0 and at most 120", low_open=True)
    _bound("notify.deliveries_kept", n.deliveries_kept, 10, 100_000, "an integer from 10 to 100000")
    if n.recover_after_s != 0:
        _bound("notify.recover_after_s", n.recover_after_s, 1, 86_400,
               "0 (derived from the retry policy) or seconds from 1 to 86400")
    if n.public_url and site_url_problem(n.public_url):
        raise ConfigError("notify.public_url", f"{SITE_URL_FORM} ({site_url_problem(n.public_url)})",
                          n.public_url)
    seen: set[str] = set()
    for i, t in enumerate(n.targets):
        where = f"notify.targets[{i}]"
        if not _TARGET_NAME.fullmatch(t.name) or t.name in seen:
            raise ConfigError(f"{where}.name", "a unique name of letters, digits, '-' and '_' (at most 64)",
                              t.name)
        seen.add(t.name)
        if t.kind not in NOTIFY_KINDS:
            raise ConfigError(f"{where}.kind", f"one of {', '.join(NOTIFY_KINDS)}", t.kind)
        if t.kind == "webhook":
            problem = site_url_problem(t.url) or ("" if t.url else "empty")
            if problem or t.urls:
                # Not echoed: a webhook URL often carries its token in the path.
                raise ConfigError(f"{where}.url", f"one webhook URL: {SITE_URL_FORM} "
                                  f"({problem or 'urls is for apprise'})")
        else:
            urls = [u for u in (t.url, *t.urls) if u]
            if not urls or any("://" not in u for u in urls):
                # Not echoed: an Apprise URL holds its service's token.
                raise ConfigError(f"{where}.url", "Apprise URLs such as tgram://bottoken/chatid, "
                                  "discord://webhook_id/token, ntfy://topic or json://host/path")
        if not t.events or any(not _EVENT_NAME.fullmatch(e) or e.partition(":")[2] not in ("", *QUIET_JOB_KINDS)
                               for e in t.events):
            raise ConfigError(f"{where}.events", "a list of event types such as task_completed, task_failed, "
                              "import_finished, source_health, disk_low, subscription_found (a job's "
                              "events of one kind: task_completed:import)", list(t.events))
        for part in ("title", "body"):
            problem = template_problem(getattr(t.template, part))
            if problem:
                raise ConfigError(f"{where}.template.{part}", "text with {field} from "
                                  f"{', '.join(TEMPLATE_FIELDS)} ({problem})", getattr(t.template, part))


def _check_media_servers(servers: tuple[MediaServerConfig, ...]) -> None:
    seen: set[str] = set()
    for i, m in enumerate(servers):
        where = f"media_servers[{i}]"
        name = m.name or m.kind
        if not _TARGET_NAME.fullmatch(name or "") or name in seen:
            raise ConfigError(f"{where}.name", "a unique name of letters, digits, '-' and '_' (at most 64)", m.name)
        seen.add(name)
        if m.kind not in MEDIA_SERVER_KINDS:
            raise ConfigError(f"{where}.kind", f"one of {', '.join(MEDIA_SERVER_KINDS)}", m.kind)
        problem = site_url_problem(m.url) or ("" if m.url else "empty")
        if problem:
            raise ConfigError(f"{where}.url", f"{SITE_URL_FORM} ({problem})", m.url)
        if m.kind == "plex":
            if not m.token:
                raise ConfigError(f"{where}.token", "the server's X-Plex-Token", m.token)
            if not re.fullmatch(r"\d{1,9}", str(m.section)):
                raise ConfigError(f"{where}.section", "the number of the Plex library section (as in "
                                  "/library/sections/3)", m.section)
        elif not m.api_key:
            raise ConfigError(f"{where}.api_key", f"an API key made in {m.kind.title()}'s dashboard", m.api_key)
        for src, dst in m.path_map.items():
            if not str(src).startswith("/") or not isinstance(dst, str) or not dst:
                raise ConfigError(f"{where}.path_map", "absolute paths {\"/data/av\": \"/media/av\"}: "
                                  "this machine's path → the server's", {src: dst})
        if not m.events:
            raise ConfigError(f"{where}.events", "a list of event types such as task_completed", [])
