"""Host names and origins, as pure functions: which ``Host`` headers the gateway answers, and
whether an ``Origin`` (or ``Referer``) is the service's own.

Why a Host allow-list: with DNS rebinding, a page on ``rebind.evil.example`` makes its own name
resolve to 127.0.0.1, so the browser treats the gateway as same-origin with the attacker's page.
The one thing that gives it away is the ``Host`` header, which carries the attacker's name.

What is allowed (the port is never part of the match):

- loopback names: ``localhost``, ``*.localhost``, ``localhost.localdomain``;
- loopback addresses (127.0.0.0/8, ``::1``);
- the name the gateway is bound to, when ``host`` is a name;
- the ``allowed_hosts`` entries: exact names, or ``*.example.com`` for any name *below*
  ``example.com`` (not ``example.com`` itself: list both when both are wanted);
- any IP literal when the gateway binds beyond loopback: rebinding needs a *name* the attacker
  controls, an address cannot be rebound, and people on a LAN type the server's address.
  Bound to loopback, a non-loopback address can only come from a proxy or a forged request, so
  it must be listed like a name.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """A loopback name or address (``localhost``, ``127.x.y.z``, ``::1``, ``[::1]``)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    return bool(ip and ip.is_loopback)


def split_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header (or an URL's authority) as (lower-case name without a trailing dot, port);
    None when it is not a plain host[:port] (user-info, spaces, a bad port, an empty name)."""
    value = value.strip().lower()
    if not value or any(c in value for c in "@/\\?# \t\r\n"):
        return None
    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
        ip = _ip(name.split("%")[0])
        return (name, port) if ip and ip.version == 6 else None
    if value.count(":") == 1:
        value, _, p = value.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    elif ":" in value:
        return None  # an IPv6 address must be bracketed in a Host header
    name = value.rstrip(".") if value != "." else ""
    if not name or not (_NAME.match(name) or _ip(name)):
        return None
    if port is not None and not 0 < port < 65536:
        return None
    return name, port


class HostPolicy:
    """Which ``Host`` names the gateway answers (see the module docstring)."""

    def __init__(self, allowed: Iterable[str] = (), *, bind_host: str = "127.0.0.1"):
        bind = bind_host.strip().strip("[]").lower().rstrip(".")
        self.beyond_loopback = not is_loopback(bind)
        self.exact: set[str] = set(LOOPBACK_NAMES)
        self.suffixes: list[str] = [".localhost"]
        if bind and not _ip(bind):
            self.exact.add(bind)  # bound to a name (e.g. nas.local)
        elif _ip(bind) and not _ip(bind).is_unspecified:  # type: ignore[union-attr]
            self.exact.add(str(_ip(bind)))
        for entry in allowed:
            e = entry.strip().lower().rstrip(".")
            if e.startswith("*."):
                self.suffixes.append(e[1:])
            elif _ip(e.strip("[]")):
                self.exact.add(str(_ip(e.strip("[]"))))
            elif e:
                self.exact.add(e)

    def allows(self, name: str) -> bool:
        """``name`` is the first part of :func:`split_host` (no port)."""
        ip = _ip(name.split("%")[0])
        if ip is not None:
            return ip.is_loopback or self.beyond_loopback or str(ip) in self.exact
        return name in self.exact or any(name.endswith(s) for s in self.suffixes)


def origin_parts(value: str) -> tuple[str, str, int] | None:
    """An ``Origin`` or ``Referer`` as (scheme, host, port with the scheme's default filled in);
    None for ``null``, opaque or malformed values."""
    try:
        u = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = u.scheme.lower()
    if scheme not in DEFAULT_PORTS or not u.netloc:
        return None
    parts = split_host(u.netloc)
    if parts is None:
        return None
    name, port = parts
    return scheme, name, port if port is not None else DEFAULT_PORTS[scheme]


def same_origin(origin: str, host_header: str | None) -> bool:
    """``origin`` names the host and port the request was sent to (its ``Host`` header).

    The scheme is not compared: behind a TLS proxy the gateway sees plain HTTP while the
    browser's origin is ``https://``. A Host without a port means the default port of the
    scheme the browser used, so ``https://nas.example`` matches ``Host: nas.example``."""
    o = origin_parts(origin)
    h = split_host(host_header) if host_header else None
    if o is None or h is None:
        return False
    scheme, name, port = o
    host_name, host_port = h
    if name != host_name:
        return False
    return port == (host_port if host_port is not None else DEFAULT_PORTS[scheme])
