"""Where a fetched URL may point: decided once, from one DNS answer, and then pinned.

:func:`check_target` reads the URL, refuses tricky spellings, resolves the host once with an
injectable resolver (default: ``socket.getaddrinfo``) and, unless private URLs are allowed,
refuses every non-global address class. It returns a :class:`Target` whose ``addresses`` are
exactly the answers it checked; the HTTP client makes curl connect to those (curl's resolve
list, see ``pipeline.http.pin``), so a DNS answer that changes between check and connect is
never used. A host that does not resolve is refused (fail closed), never handed to curl.

With a proxy, the proxy resolves the name and curl's resolve list does not apply. Then literal
addresses and names that resolve here are still checked, a name that does not resolve here is
left to the proxy (it may be a name only the proxy knows), and nothing is pinned: the proxy is
the egress boundary the operator chose.

Nothing here does I/O except through the resolver.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from dataclasses import dataclass, replace
from typing import Callable, Sequence
from urllib.parse import urlsplit

from pipeline.errors import NonPublicAddress, UnresolvableHost, UnsafeURL

__all__ = ["SITE_URL_FORM", "Resolver", "Target", "UrlGuard", "address_class", "check_target", "check_url",
           "site_url_problem", "system_resolver"]

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
# IANA special-purpose blocks that some Python versions still call global (3.11 does so
# for most of 192.0.0.0/24); listed so the verdict does not depend on the interpreter.
_SPECIAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "100::/64", "2001::/23", "2001:db8::/32"))
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_NUMERIC_LABEL = re.compile(r"\d+|0[xX][0-9a-fA-F]*")
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` has (``socket.getaddrinfo``), first answer first, no repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_class(ip: IPAddress) -> str | None:
    """The non-global class ``ip`` belongs to (``"loopback"``, ``"CGNAT"``, …); None if public.

    IPv4 written inside IPv6 (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, NAT64
    ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by the IPv4 address it carries.
    """
    inner = _embedded_ipv4(ip)
    if inner is not None:
        cls = address_class(inner)
        return f"{cls}, IPv4 {inner} inside IPv6" if cls else None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "CGNAT 100.64.0.0/10"
    if ip in _UNIQUE_LOCAL:
        return "unique-local"
    if any(ip in n for n in _RFC1918) or (ip.version == 6 and ip.is_site_local):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global or any(ip in n for n in _SPECIAL if n.version == ip.version):
        return "special-purpose, not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):  # not :: or ::1 themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL and where to connect for it.

    ``addresses`` are the resolver answers that were checked; empty when curl does not
    resolve the host (a literal address, or a proxy resolves it).
    """

    url: str
    host: str
    port: int
    addresses: tuple[str, ...] = ()

    @property
    def resolve_entry(self) -> str | None:
        """The curl resolve-list entry ``host:port:addr[,addr]`` that pins the checked answers."""
        if not self.addresses:
            return None
        shown = ",".join(f"[{a}]" if ":" in a else a for a in self.addresses)
        return f"{self.host}:{self.port}:{shown}"


def check_target(url: str, *, allow_private: bool, via_proxy: bool = False,
                 resolver: Resolver | None = None) -> Target:
    """Check ``url`` and resolve its host once.

    Parameters:
        allow_private: loopback/private/… targets are allowed (the config file's
            ``http.allow_private_urls``); the spelling rules and the resolution still apply.
        via_proxy: a proxy resolves the host (see the module docstring).
        resolver: ``(host, port) -> addresses``; default :func:`system_resolver`.

    Returns:
        Target: with the checked addresses to pin.
    Raises:
        UnsafeURL: wrong scheme, user-info, control characters, a numeric host that is not a
            canonical dotted quad, a scoped IPv6 literal, a ``localhost`` name, or an address
            (any of the answers) in a non-global class, named.
        UnresolvableHost: the host has no address (and no proxy resolves it).
    """
    host, port, literal = _split(url, allow_private)
    if literal:
        return Target(url, host, port)
    try:
        answers = list((resolver or system_resolver)(host, port))
    except (OSError, UnicodeError) as e:
        if via_proxy:
            return Target(url, host, port)
        raise UnresolvableHost(url, host, str(e) or type(e).__name__) from None
    if not answers:
        if via_proxy:
            return Target(url, host, port)
        raise UnresolvableHost(url, host, "no address")
    checked = []
    for a in answers:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:  # a scoped answer ('fe80::1%eth0') or garbage: never public
            raise UnsafeURL(url, f"{host} resolves to {a!r}, not a plain address") from None
        cls = address_class(ip)
        if cls and not allow_private:
            raise NonPublicAddress(url, f"{host} resolves to the non-public address {ip} ({cls})")
        checked.append(str(ip))
    return Target(url, host, port, () if via_proxy else tuple(checked))


def _split(url: str, allow_private: bool) -> tuple[str, int, bool]:
    """``(host, port, is_literal_address)`` of ``url`` after every check that needs no DNS."""
    if _CONTROL_OR_SPACE.search(url):
        raise UnsafeURL(url, "control characters or whitespace in a URL are refused")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeURL(url, f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(url, "only http(s) URLs with a host are fetched")
    if "@" in parts.netloc:
        raise UnsafeURL(url, "URLs with user-info (user@host) are refused")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    literal = _literal_address(url, host)
    if literal is not None:
        cls = address_class(literal)
        if cls and not allow_private:
            raise NonPublicAddress(url, f"{host} is a non-public address ({cls})")
        return host, port, True
    if not _NAME.fullmatch(host):
        raise UnsafeURL(url, f"host {host!r} is not a DNS name (letters, digits, '-', '.'; "
                             "write an internationalised name in its xn-- form)")
    bare = host.rstrip(".")
    if not allow_private and (bare == "localhost" or bare.endswith(".localhost")):
        raise NonPublicAddress(url, f"{host} is a non-public address (loopback name)")
    return host, port, False


def check_url(url: str, *, allow_private: bool, via_proxy: bool = False,
              resolver: Resolver | None = None) -> str:
    """:func:`check_target` for callers that only need the verdict; returns ``url``."""
    return check_target(url, allow_private=allow_private, via_proxy=via_proxy, resolver=resolver).url


def _literal_address(url: str, host: str) -> IPAddress | None:
    """The address a numeric host stands for; refuses the spellings browsers and curl read
    differently from a dotted quad (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``)."""
    if "%" in host:
        raise UnsafeURL(url, f"scoped IPv6 literal {host!r} is refused")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeURL(url, f"{host!r} is not a valid IPv6 address") from None
    labels = host.rstrip(".").split(".") if host.rstrip(".") else [host]
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # "ends in a number": URL parsers read it as IPv4
        if host != host.rstrip(".") or not _CANONICAL_V4.fullmatch(host):
            raise UnsafeURL(url, f"numeric host {host!r} is not a canonical IPv4 address "
                                 "(write it as four decimal numbers a.b.c.d)")
        return ipaddress.IPv4Address(host)
    return None


class UrlGuard:
    """:func:`check_target` with the answer kept per (scheme, host, port) for the guard's life.

    One guard serves one download: every segment on a host connects to the addresses checked
    the first time, so the resolver is asked once per host and a later DNS change is not used.
    A failure is not kept (a refused host is refused again; an unresolvable one is retried).
    """

    def __init__(self, allow_private: bool, *, via_proxy: bool = False, resolver: Resolver | None = None):
        self.allow_private, self.via_proxy, self.resolver = allow_private, via_proxy, resolver
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int], Target] = {}

    def target(self, url: str) -> Target:
        """The checked target of ``url``; the spelling is checked every time, the host once."""
        host, port, literal = _split(url, self.allow_private)
        if literal:
            return Target(url, host, port)
        with self._lock:
            known = self._known.get((host, port))
            if known is None:
                known = check_target(url, allow_private=self.allow_private, via_proxy=self.via_proxy,
                                     resolver=self.resolver)
                self._known[(host, port)] = known
        return replace(known, url=url)

    def check(self, url: str) -> str:
        """Refuse ``url`` as :meth:`target` would; returns it."""
        return self.target(url).url


SITE_URL_FORM = "an http:// or https:// URL with a host, without user-info, whitespace or control characters"


def site_url_problem(url: str) -> str:
    """Why ``url`` cannot be a site's ``base_url``/``cdn_url``; empty when it can (or is empty).

    A CR/LF here would become a request header through ``Referer``; user-info would send
    credentials; only http(s) is fetched.
    """
    if not url:
        return ""
    if re.search(r"[\x00-\x20\x7f]", url):
        return "whitespace or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        return f"not a URL: {e}"
    if parts.scheme not in ("http", "https"):
        return "not http or https"
    if "@" in parts.netloc:
        return "user-info (user@host) is not allowed"
    if not parts.hostname:
        return "no host"
    return ""
