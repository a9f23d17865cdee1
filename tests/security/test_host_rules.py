"""The pure host and origin rules (``gateway/hosts.py``) and the config keys that feed them."""

from __future__ import annotations

import pytest

from gateway.hosts import HostPolicy, same_origin, split_host
from pipeline.config import load
from pipeline.errors import ConfigError


def test_split_host():
    assert split_host("Example.COM:8000") == ("example.com", 8000)
    assert split_host("nas.example.com.") == ("nas.example.com", None)
    assert split_host("[::1]:8000") == ("::1", 8000) and split_host("[::1]") == ("::1", None)
    for bad in ("", " ", "a b", "user@host", "host:", "host:x", "host:70000", "::1", "[::1", "[zz]:1",
                "h/ost", "evil.example\r\nX: 1", ".", "-bad-.example"):
        assert split_host(bad) is None, bad


def test_policy_on_loopback():
    p = HostPolicy(["nas.example.com", "*.home.example", "192.168.1.10"], bind_host="127.0.0.1")
    for ok in ("localhost", "a.localhost", "127.0.0.1", "127.3.2.1", "::1", "nas.example.com", "x.home.example",
               "192.168.1.10"):
        assert p.allows(ok), ok
    for bad in ("rebind.evil.example", "home.example", "10.0.0.1", "localhost.evil.example", "nas.example.co"):
        assert not p.allows(bad), bad


def test_policy_beyond_loopback_accepts_addresses_not_names():
    # An address cannot be rebound, and LAN users type the server's address; a name must be listed.
    p = HostPolicy([], bind_host="0.0.0.0")
    assert p.allows("192.168.1.10") and p.allows("10.1.2.3") and p.allows("fe80::1") and p.allows("localhost")
    assert not p.allows("nas.local") and not p.allows("rebind.evil.example")
    named = HostPolicy([], bind_host="nas.local")
    assert named.allows("nas.local") and not named.allows("other.local")


def test_same_origin():
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert same_origin("https://nas.example.com", "nas.example.com")  # behind a TLS proxy
    assert same_origin("http://nas.example.com", "nas.example.com:80")
    assert same_origin("HTTP://Localhost:8000", "localhost:8000")
    assert not same_origin("http://127.0.0.1:9999", "127.0.0.1:8000")  # another local port
    assert not same_origin("http://localhost:8000", "127.0.0.1:8000")
    assert not same_origin("https://nas.example.com", "nas.example.com:8000")
    for bad in ("null", "", "file://", "http://a@127.0.0.1:8000", "chrome-extension://abc"):
        assert not same_origin(bad, "127.0.0.1:8000"), bad
    assert not same_origin("http://127.0.0.1:8000", None)


def test_config_keys():
    cfg = load(None, {}, allowed_hosts=["nas.example.com", "*.home.example", "192.168.1.10", "[::1]"],
               auth_fail_limit=5, auth_fail_window_s=30)
    assert cfg.allowed_hosts[1] == "*.home.example" and cfg.auth_fail_limit == 5
    assert load(None, {}).auth_fail_limit == 10 and load(None, {}).allowed_hosts == ()
    for bad in ("http://nas.example.com", "nas.example.com:8000", "*", "nas/x", "a b", "*.*.x"):
        with pytest.raises(ConfigError) as e:
            load(None, {}, allowed_hosts=[bad])
        assert "allowed_hosts" in str(e.value), bad
    for bad in ("*", "http://nas.local/", "nas.local"):
        with pytest.raises(ConfigError) as e:
            load(None, {}, cors_origins=[bad])
        assert "cors_origins" in str(e.value), bad
    with pytest.raises(ConfigError, match="auth_fail_limit"):
        load(None, {}, auth_fail_limit=0)
    with pytest.raises(ConfigError, match="auth_fail_window_s"):
        load(None, {}, auth_fail_window_s=0)
