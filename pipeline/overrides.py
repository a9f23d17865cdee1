"""Settings a user may change through ``PUT /api/setting``: a safe subset of the config.

Overrides are validated with the config's own rules and stored in
``<data_dir>/settings.json``; every ``nassav`` process applies them on top of its config file
when it starts (``gateway/cli/main.py``), so a change takes effect at the next start of each process.
Addresses, the Redis URL, the token, the proxy, the ffmpeg path and anything else that could
widen access or run a program are not in the subset; so is ``http.allow_private_urls``: loopback
and private targets are allowed only by the config file, so a base URL changed here must point
to public addresses unless the config file allows private URLs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Mapping

from pipeline import config as cfgmod
from pipeline.config import Config, SourceConfig
from pipeline.errors import ConfigError, UnsafeURL
from pipeline.store import atomic_write
from pipeline.urlcheck import SITE_URL_FORM, Resolver, check_target, site_url_problem

FILENAME = "settings.json"

SECTIONS: dict[str, tuple[str, ...]] = {
    "download": ("concurrency", "segment_retries", "stall_timeout_s", "speed_limit_bytes_per_s",
                 "playlist_max_age_s", "mutex_limit", "variant", "keep_parts", "max_retries",
                 "min_free_gb", "hours", "bandwidth", "timezone", "editions", "upgrade_check_interval_s"),
    "library": ("write_nfo", "write_poster", "extrafanart", "actor_photos"),
    "http": ("impersonate", "timeout_s", "retries"),
    "ui": ("enable_avatar", "display_title", "file_path_prefix"),
    # Not url, model or api_key: where requests go and the secret stay with the config file.
    "translation": ("target_language", "fields", "nfo_title", "chinese_conversion"),
}
TOP = ("log_level",)
SITE_TABLES = ("sources", "catalogues")
SITE_KEYS = ("weight", "enabled", "base_url", "min_interval_s")


class SettingsError(ValueError):
    """An override outside the safe subset or with a wrong value; says which and why."""


def path(data_dir: Path) -> Path:
    return Path(data_dir) / FILENAME


def load(data_dir: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def save(data_dir: Path, overrides: Mapping[str, Any]) -> None:
    # Owner-only, as before (mkstemp): no secret in it today, but it is the service's own
    # configuration, nothing a media server reads, and a later key may well be sensitive.
    atomic_write(path(data_dir), json.dumps(overrides, indent=1, sort_keys=True).encode(), mode=0o600)


def view(config: Config) -> dict[str, Any]:
    """The safe subset of ``config`` as the API shows it."""
    out: dict[str, Any] = {k: getattr(config, k) for k in TOP}
    for section, keys in SECTIONS.items():
        obj = getattr(config, section)
        out[section] = {k: _plain(getattr(obj, k)) for k in keys}
    for table in SITE_TABLES:
        out[table] = {name: {k: getattr(s, k) for k in SITE_KEYS}
                      for name, s in getattr(config, table).items()}
    return out


def _plain(value: Any) -> Any:
    """A config value as JSON shows it: ``download.bandwidth`` is a tuple of dataclasses."""
    if isinstance(value, tuple):
        return [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    return value


def merge(current: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``change`` on top of ``current``; a null leaf removes that override."""
    out = json.loads(json.dumps(current))
    for k, v in change.items():
        if isinstance(v, dict):
            sub = merge(out.get(k) or {}, v)
            if sub:
                out[k] = sub
            else:
                out.pop(k, None)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def apply(config: Config, overrides: Mapping[str, Any], *, check_targets: bool = True,
          resolver: Resolver | None = None) -> Config:
    """``config`` (as the config file gives it) with ``overrides`` applied and validated.

    Parameters:
        check_targets: a ``base_url`` that differs from the config file's must resolve
            (with ``resolver``, default ``socket.getaddrinfo``) to public addresses only,
            unless the config file sets ``http.allow_private_urls``. Off when re-applying
            stored overrides at start-up, so a DNS outage cannot stop a process starting
            (every fetch is checked again anyway).

    Raises:
        SettingsError: a key outside the safe subset, a wrong type or value, a private target.
    """
    if not isinstance(overrides, Mapping):
        raise SettingsError("settings must be a JSON object")
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in TOP:
            changes[key] = _coerce(Config, key, value, key)
        elif key in SECTIONS:
            obj = getattr(config, key)
            fields = _section(value, key, SECTIONS[key])
            changes[key] = dataclasses.replace(obj, **{
                k: _coerce(type(obj), k, v, f"{key}.{k}") for k, v in fields.items()})
        elif key in SITE_TABLES:
            table = dict(getattr(config, key))
            if not isinstance(value, Mapping):
                raise SettingsError(f"{key}: expected an object of site name → settings")
            for name, site in value.items():
                if name not in table:
                    raise SettingsError(f"{key}.{name}: unknown site; known: {', '.join(table)}")
                fields = _section(site, f"{key}.{name}", SITE_KEYS)
                table[name] = dataclasses.replace(table[name], **{
                    k: _coerce(SourceConfig, k, v, f"{key}.{name}.{k}") for k, v in fields.items()})
            changes[key] = table
        else:
            raise SettingsError(f"{key}: not a setting that can be changed here; changeable: "
                                f"{', '.join(TOP + tuple(SECTIONS) + SITE_TABLES)}")
    new = dataclasses.replace(config, **changes)
    try:
        cfgmod._check(new)
    except ConfigError as e:
        raise SettingsError(str(e).removeprefix("config: ")) from None
    if check_targets and not config.http.allow_private_urls:
        _check_public_targets(config, new, resolver)
    return new


def _check_public_targets(base: Config, new: Config, resolver: Resolver | None) -> None:
    for table in SITE_TABLES:
        before = getattr(base, table)
        for name, site in getattr(new, table).items():
            if not site.base_url or (name in before and site.base_url == before[name].base_url):
                continue  # the config file's own value: the operator said so there
            try:
                check_target(site.base_url, allow_private=False, via_proxy=bool(base.http.proxy),
                             resolver=resolver)
            except UnsafeURL as e:
                raise SettingsError(
                    f"{table}.{name}.base_url: {e.reason}; loopback and private targets are allowed "
                    "only by http.allow_private_urls in the config file, not through this API") from None


def _section(value: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected an object")
    for k in value:
        if k == "allow_private_urls":
            raise SettingsError(f"{where}.{k}: only the config file can allow private URLs; "
                                "it is never changeable through this API")
        if k not in allowed:
            raise SettingsError(f"{where}.{k}: not changeable here; changeable: {', '.join(allowed)}")
    return value


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    hint = typing.get_type_hints(cls)[name]
    try:
        out = cfgmod._coerce(hint, value, where)
    except ConfigError as e:
        raise SettingsError(str(e).removeprefix("config: ")) from None
    if name in ("base_url", "cdn_url") and isinstance(out, str) and site_url_problem(out):
        raise SettingsError(f"{where}: expected {SITE_URL_FORM} ({site_url_problem(out)})")
    if isinstance(out, (int, float)) and not isinstance(out, bool) and out < 0:
        raise SettingsError(f"{where}: expected a number ≥ 0")
    return out


def apply_stored(config: Config) -> Config:
    """``config`` with the data dir's stored overrides; a broken file stops start-up, named."""
    stored = load(config.data_path)
    if not stored:
        return config
    try:
        return apply(config, stored, check_targets=False)
    except SettingsError as e:
        raise ConfigError(str(path(config.data_path)), "valid overrides", str(e)) from None
