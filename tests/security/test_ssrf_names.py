"""Every name trick and address class the URL check must refuse, as pure checks.

No connection is made here: ``check_target`` is called with an injected resolver where a
name is needed, so the answers (including non-loopback ones such as 100.64.0.1) are only
judged, never connected to.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from pipeline.errors import UnresolvableHost, UnsafeURL
from pipeline.urlcheck import UrlGuard, address_class, check_target, check_url


def answers(*addrs: str):
    """A resolver that answers ``addrs`` for any name and records what it was asked."""
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addrs)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def nxdomain(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def must_not_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver was asked for {host}: the spelling alone must refuse it")


# (URL, words the refusal must contain). Each is refused before any DNS question.
SPELLING_TRICKS = [
    ("http://localhost/", "loopback name"),
    ("http://localhost./", "loopback name"),
    ("http://LocalHost:8000/", "loopback name"),
    ("http://api.localhost/", "loopback name"),
    ("http://a.b.localhost./", "loopback name"),
    ("http://[fe80::1%25eth0]/", "scoped IPv6 literal"),
    ("http://[fe80::1%eth0]/", "scoped IPv6 literal"),
    ("http://2130706433/", "not a canonical IPv4"),
    ("http://0177.0.0.1/", "not a canonical IPv4"),
    ("http://0x7f.1/", "not a canonical IPv4"),
    ("http://0x7f000001/", "not a canonical IPv4"),
    ("http://127.1/", "not a canonical IPv4"),
    ("http://127.0.1/", "not a canonical IPv4"),
    ("http://127.0.0.1./", "not a canonical IPv4"),
    ("http://017700000001/", "not a canonical IPv4"),
    ("http://1.2.3.0x4/", "not a canonical IPv4"),
    ("http://example.com@127.0.0.1/", "user-info"),
    ("http://127.0.0.1\r\nX-Injected: 1/", "control characters"),
    ("http://exa mple.com/", "control characters or whitespace"),
    ("http://example.com/\x00", "control characters"),
    ("file:///etc/passwd", "only http(s)"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "only http(s)"),
    ("http:///nohost", "only http(s) URLs with a host"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://exa$mple.com/", "not a DNS name"),
    ("http://bücher.example/", "xn-- form"),
]


@pytest.mark.parametrize("url, reason", SPELLING_TRICKS)
def test_spelling_tricks_are_refused_without_asking_dns(url, reason):
    with pytest.raises(UnsafeURL) as e:
        check_target(url, allow_private=False, resolver=must_not_resolve)
    assert reason in e.value.reason, e.value.reason
    assert not isinstance(e.value, UnresolvableHost)  # refused for its spelling, not a DNS failure


# Literal addresses: refused with their class named, without DNS.
LITERALS = [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("[::1]", "loopback"),
    ("0.0.0.0", "unspecified"), ("[::]", "unspecified"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"),
    ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"),
    ("[fc00::1]", "unique-local"), ("[fd12:3456::1]", "unique-local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("192.0.0.8", "special-purpose"), ("198.18.0.1", "special-purpose"), ("192.0.2.1", "special-purpose"),
    ("0.1.2.3", "special-purpose"), ("[2001:db8::1]", "special-purpose"),
    ("[::ffff:127.0.0.1]", "loopback, IPv4 127.0.0.1 inside IPv6"),
    ("[::ffff:7f00:1]", "loopback, IPv4 127.0.0.1 inside IPv6"),
    ("[::ffff:169.254.169.254]", "link-local, IPv4 169.254.169.254 inside IPv6"),
    ("[::127.0.0.1]", "loopback, IPv4 127.0.0.1 inside IPv6"),
    ("[64:ff9b::a00:1]", "private, IPv4 10.0.0.1 inside IPv6"),
    ("[2002:7f00:1::]", "loopback, IPv4 127.0.0.1 inside IPv6"),
]


@pytest.mark.parametrize("host, cls", LITERALS)
def test_literal_addresses_are_refused_with_their_class(host, cls):
    url = f"http://{host}:8080/x.m3u8"
    with pytest.raises(UnsafeURL) as e:
        check_target(url, allow_private=False, resolver=must_not_resolve)
    assert f"non-public address ({cls}" in e.value.reason, e.value.reason
    # The operator's allow_private_urls lets them through, unresolved (curl connects to the literal).
    t = check_target(url, allow_private=True, resolver=must_not_resolve)
    assert t.addresses == () and t.resolve_entry is None


@pytest.mark.parametrize("addr, cls", [(h.strip("[]"), c) for h, c in LITERALS])
def test_a_name_resolving_to_a_non_global_address_is_refused(addr, cls):
    resolve = answers(addr)
    with pytest.raises(UnsafeURL) as e:
        check_target("https://cdn.example.test/v.m3u8", allow_private=False, resolver=resolve)
    assert f"cdn.example.test resolves to the non-public address {ipaddress.ip_address(addr)} ({cls}" \
        in e.value.reason, e.value.reason
    assert resolve.asked == [("cdn.example.test", 443)]


def test_one_bad_answer_among_public_ones_refuses_the_name():
    resolve = answers("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "100.64.3.4")
    with pytest.raises(UnsafeURL, match=r"100\.64\.3\.4 \(CGNAT"):
        check_target("http://cdn.example.test/", allow_private=False, resolver=resolve)


def test_a_scoped_answer_from_the_resolver_is_refused():
    with pytest.raises(UnsafeURL, match=r"fe80::1%eth0 \(link-local\)"):
        check_target("http://cdn.example.test/", allow_private=False, resolver=answers("fe80::1%eth0"))
    with pytest.raises(UnsafeURL, match="not a plain address"):
        check_target("http://cdn.example.test/", allow_private=False, resolver=answers("not-an-address"))


def test_public_answers_are_all_kept_to_be_pinned():
    t = check_target("http://cdn.example.test:8443/a", allow_private=False,
                     resolver=answers("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    assert t.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert t.resolve_entry == "cdn.example.test:8443:93.184.215.14,[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"


def test_a_host_that_does_not_resolve_is_refused_not_let_through():
    with pytest.raises(UnresolvableHost) as e:
        check_target("http://gone.example.test/x", allow_private=False, resolver=nxdomain)
    assert "host gone.example.test does not resolve" in e.value.reason
    with pytest.raises(UnresolvableHost, match="no address"):
        check_target("http://gone.example.test/x", allow_private=True, resolver=answers())


def test_with_a_proxy_an_unknown_name_is_left_to_the_proxy_but_known_bad_answers_are_not():
    t = check_target("http://only-the-proxy-knows.test/x", allow_private=False, via_proxy=True, resolver=nxdomain)
    assert t.addresses == ()  # nothing pinned: the proxy resolves
    with pytest.raises(UnsafeURL, match="loopback"):
        check_target("http://rebind.example.test/", allow_private=False, via_proxy=True, resolver=answers("127.0.0.1"))
    with pytest.raises(UnsafeURL, match="loopback"):
        check_target("http://127.0.0.1/", allow_private=False, via_proxy=True, resolver=must_not_resolve)
    t = check_target("http://cdn.example.test/", allow_private=False, via_proxy=True, resolver=answers("93.184.215.14"))
    assert t.addresses == ()


def test_public_literals_and_canonical_forms_pass():
    assert check_url("https://93.184.215.14/a.ts", allow_private=False, resolver=must_not_resolve)
    assert check_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/a.ts", allow_private=False,
                     resolver=must_not_resolve)
    assert address_class(ipaddress.ip_address("8.8.8.8")) is None
    assert address_class(ipaddress.ip_address("::ffff:8.8.8.8")) is None


def test_the_guard_asks_once_per_host_and_still_checks_every_spelling():
    resolve = answers("93.184.215.14")
    guard = UrlGuard(False, resolver=resolve)
    for i in range(5):
        t = guard.target(f"https://cdn.example.test/seg{i}.ts")
        assert t.url.endswith(f"seg{i}.ts") and t.addresses == ("93.184.215.14",)
    guard.target("https://other.example.test/seg.ts")
    assert resolve.asked == [("cdn.example.test", 443), ("other.example.test", 443)]
    with pytest.raises(UnsafeURL, match="control characters"):
        guard.target("https://cdn.example.test/seg\r\nX: y")
    with pytest.raises(UnsafeURL, match="user-info"):
        guard.target("https://u@cdn.example.test/seg.ts")


def test_figures_for_the_fault_report():
    """Every trick above in one count (the fault report's "SSRF name tricks" row)."""
    from tests.figures import record

    refused = 0
    for url, _ in SPELLING_TRICKS:
        try:
            check_target(url, allow_private=False, resolver=must_not_resolve)
        except UnsafeURL:
            refused += 1
    for host, _ in LITERALS:
        for url, resolve in ((f"http://{host}/", must_not_resolve), ("http://n.example.test/", answers(host.strip("[]")))):
            try:
                check_target(url, allow_private=False, resolver=resolve)
            except UnsafeURL:
                refused += 1
    tried = len(SPELLING_TRICKS) + 2 * len(LITERALS)
    assert refused == tried
    record("SSRF name tricks", tried=tried, refused=refused, let_through=tried - refused,
           address_classes=len({c.split(",")[0] for _, c in LITERALS}), recover_s=0, data_lost="none")
