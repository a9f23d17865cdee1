"""The product's Redis clients: every reply comes back as ``str``, never ``bytes``.

Each client the product opens decodes responses (``decode_responses=True``): the sync ones
through :func:`connect` (workers, sweep, CLI) and the gateway's asyncio pool
(``gateway/redis_pool.py``), so no caller converts bytes itself. The keys hold text only
(ids, JSON, numbers; images and cookies live on disk). Dramatiq's broker keeps its own,
non-decoding pool (``pipeline/broker.py``): what it reads is its business.

A ``redis_url`` is either a plain Redis URL (``redis://``, ``rediss://``, ``unix://``) or a
Sentinel one, parsed here and nowhere else::

    redis+sentinel://[[user]:password@]host1[:26379],host2[:26379],.../service[/db][?sentinel_password=…]

The password in front of the hosts is the one of the Redis servers (master and replicas);
``sentinel_password`` the one of the Sentinels themselves, when they have one. Clients on a
Sentinel URL ask the Sentinels for the current master on every new connection, so after a
failover they reconnect to the new master by themselves. :func:`redact` is what may be logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import redis

# redis-py is imported where a client is made, not here: pipeline.config parses Redis URLs
# with this module, and the HLS command (which never talks to Redis) would pay ~60 ms for it.

# What every product client is opened with (the gateway's pool passes it too).
DECODED: dict[str, Any] = {"decode_responses": True}

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SENTINEL_FORM = (f"{SENTINEL_SCHEME}://[[user]:password@]host1[:{SENTINEL_PORT}],host2[:{SENTINEL_PORT}]"
                 "/service[/db][?sentinel_password=…]")
_SERVICE = re.compile(r"^[A-Za-z0-9._-]+$")
# How long one question to a Sentinel may take: a dead one must not stall the search for the
# master (redis-py asks them in turn).
SENTINEL_TIMEOUT_S = 1.0


class RedisUrlError(ValueError):
    """A ``redis_url`` that cannot be used; the message names the accepted form, ``why`` the fault."""

    def __init__(self, url: str, why: str):
        self.why = why
        super().__init__(f"redis_url {redact(url)!r}: {why}; a Sentinel URL reads {SENTINEL_FORM}")


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:  # never the passwords
        return f"SentinelUrl({redact_sentinel(self)!r})"


def is_sentinel(redis_url: str) -> bool:
    return redis_url.startswith(SENTINEL_SCHEME + "://")


def _bad(url: str, why: str) -> RedisUrlError:
    return RedisUrlError(url, why)


def parse_sentinel(redis_url: str) -> SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL (:class:`RedisUrlError` names what is wrong)."""
    if not is_sentinel(redis_url):
        raise _bad(redis_url, f"not a {SENTINEL_SCHEME}:// URL")
    rest = redis_url[len(SENTINEL_SCHEME) + 3:]
    rest, _, query = rest.partition("?")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise _bad(redis_url, "a fragment (#…) has no meaning here")
    userinfo, at, hostpart = rest.rpartition("@")
    hosts, _, path = hostpart.partition("/")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
        if not colon:  # "secret@host": redis-py's convention is ":secret@"; accept the bare form too
            username, password = None, unquote(user) or None
    sentinels = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            raise _bad(redis_url, "a Sentinel host is empty")
        try:
            parsed = urlsplit("//" + item)
            host, port = parsed.hostname, parsed.port or SENTINEL_PORT
        except ValueError:
            raise _bad(redis_url, f"{item!r} is not host[:port]") from None
        if not host:
            raise _bad(redis_url, f"{item!r} is not host[:port]")
        sentinels.append((host, port))
    parts = [p for p in path.split("/") if p != ""]
    if not parts or not _SERVICE.match(parts[0]):
        raise _bad(redis_url, "the master's service name (as in `sentinel monitor <name> …`) is missing")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise _bad(redis_url, "after the service name only a database number may follow")
    db = int(parts[1]) if len(parts) == 2 else 0
    params = parse_qs(query, keep_blank_values=True)
    unknown = set(params) - {"sentinel_password"}
    if unknown:
        raise _bad(redis_url, f"unknown parameter(s) {', '.join(sorted(unknown))}")
    sentinel_password = params.get("sentinel_password", [None])[-1] or None
    return SentinelUrl(tuple(sentinels), parts[0], db, username, password, sentinel_password)


def redact_sentinel(u: SentinelUrl) -> str:
    auth = "***@" if u.password or u.username else ""
    hosts = ",".join(f"{h}:{p}" for h, p in u.sentinels)
    query = "?sentinel_password=***" if u.sentinel_password else ""
    return f"{SENTINEL_SCHEME}://{auth}{hosts}/{u.service}/{u.db}{query}"


def redact(redis_url: str) -> str:
    """``redis_url`` without any password, fit for a log line."""
    scheme, sep, rest = redis_url.partition("://")
    if not sep:
        return redis_url
    rest, q, query = rest.partition("?")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    if q:
        query = re.sub(r"(password=)[^&]*", r"\1***", query)
        rest += "?" + query
    return f"{scheme}://{rest}"


def sentinel_options(u: SentinelUrl) -> dict[str, Any]:
    """How to reach the Sentinels themselves (not the master)."""
    return {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "password": u.sentinel_password}


def master_options(u: SentinelUrl) -> dict[str, Any]:
    """What every connection to the master is opened with (database, credentials)."""
    out: dict[str, Any] = {"db": u.db}
    if u.username:
        out["username"] = u.username
    if u.password:
        out["password"] = u.password
    return out


def sentinel_client(redis_url: str, *, decoded: bool = True, **options: Any) -> redis.Redis:
    """A sync client on the current master of a Sentinel URL; it follows failovers."""
    from redis.sentinel import Sentinel

    u = parse_sentinel(redis_url)
    manager = Sentinel(list(u.sentinels), sentinel_kwargs=sentinel_options(u))
    extra = DECODED if decoded else {}
    return manager.master_for(u.service, **master_options(u), **extra, **options)


def connect(redis_url: str, **options: Any) -> redis.Redis:
    """A sync client on ``redis_url`` (plain or Sentinel) whose replies are ``str``;
    ``options`` go to redis-py (timeouts, health checks)."""
    if is_sentinel(redis_url):
        return sentinel_client(redis_url, **options)
    import redis

    return redis.Redis.from_url(redis_url, **DECODED, **options)
