"""Settings are validated on config load and on ``PUT /api/setting`` (the real gateway on real
Redis): site URLs in a safe form, numbers within bounds (400 / ConfigError naming the key and
the bound), and private targets only where the config file allows them."""

from __future__ import annotations

import json

import pytest

from pipeline import overrides
from pipeline.config import load
from pipeline.errors import ConfigError
from tests.api_helpers import gateway

# (config fragment, the key, words of the bound) — refused both in a config file and via the API.
BAD = [
    ({"sources": {"jable": {"base_url": "https://jable.tv\r\nX-Injected: 1"}}}, "sources.jable.base_url",
     "whitespace or a control character"),
    ({"sources": {"jable": {"base_url": "https://jable.tv /x"}}}, "sources.jable.base_url", "whitespace"),
    ({"sources": {"jable": {"base_url": "https://user:pw@jable.tv"}}}, "sources.jable.base_url", "user-info"),
    ({"sources": {"jable": {"base_url": "ftp://jable.tv"}}}, "sources.jable.base_url", "not http or https"),
    ({"sources": {"jable": {"base_url": "file:///etc"}}}, "sources.jable.base_url", "not http or https"),
    ({"sources": {"jable": {"base_url": "https://"}}}, "sources.jable.base_url", "no host"),
    ({"sources": {"jable": {"base_url": "https://jable.tv:99999"}}}, "sources.jable.base_url", "not a URL"),
    ({"sources": {"jable": {"min_interval_s": 61}}}, "sources.jable.min_interval_s", "seconds from 0 to 60"),
    ({"catalogues": {"javbus": {"min_interval_s": -1}}}, "catalogues.javbus.min_interval_s", "0"),
    ({"sources": {"jable": {"weight": 1001}}}, "sources.jable.weight", "from 0 to 1000"),
    ({"http": {"retries": 11}}, "http.retries", "an integer from 0 to 10"),
    ({"http": {"retries": -1}}, "http.retries", "0"),
    ({"http": {"timeout_s": 0}}, "http.timeout_s", "more than 0 and at most 600"),
    ({"http": {"timeout_s": 601}}, "http.timeout_s", "more than 0 and at most 600"),
    ({"download": {"variant": "best"}}, "download.variant", 'highest, lowest or a maximum height'),
    ({"download": {"variant": "0"}}, "download.variant", 'from 1 to 4320 such as "720"'),
    ({"download": {"variant": "99999"}}, "download.variant", "from 1 to 4320"),
    ({"download": {"segment_retries": 21}}, "download.segment_retries", "from 0 to 20"),
    ({"download": {"max_retries": 21}}, "download.max_retries", "from 0 to 20"),
    ({"download": {"stall_timeout_s": 0}}, "download.stall_timeout_s", "more than 0 and at most 600"),
    ({"download": {"playlist_max_age_s": 10 ** 7}}, "download.playlist_max_age_s", "604800"),
    ({"download": {"mutex_limit": 65}}, "download.mutex_limit", "from 1 to 64"),
    ({"download": {"concurrency": 129}}, "download.concurrency", "from 1 to 128"),
    ({"download": {"speed_limit_bytes_per_s": -5}}, "download.speed_limit_bytes_per_s", "0"),
]
CONFIG_ONLY = [  # not in the API's subset, still bounded in the file
    ({"sources": {"missav": {"cdn_url": "https://surrit.com\nHost: evil"}}}, "sources.missav.cdn_url",
     "control character"),
    ({"download": {"time_limit_s": 0}}, "download.time_limit_s", "from 1 to 604800"),
]


@pytest.mark.parametrize("fragment, key, bound", BAD + CONFIG_ONLY)
def test_config_file_refuses_with_key_and_bound(tmp_path, fragment, key, bound):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(fragment), encoding="utf-8")  # JSON is YAML; keeps the CRLF exact
    with pytest.raises(ConfigError) as e:
        load(path, {})
    assert e.value.key == key and bound in str(e.value), str(e.value)


def test_config_file_accepts_the_documented_forms(tmp_path):
    for variant in ("highest", "lowest", "720", "1080p", "HIGHEST"):
        assert load(None, {}, download={"variant": variant}).download.variant == variant
    cfg = load(None, {}, http={"retries": 0, "timeout_s": 0.5},
               sources={"jable": {"base_url": "http://127.0.0.1:8080/prefix", "min_interval_s": 0}})
    assert cfg.http.retries == 0 and cfg.sources["jable"].base_url == "http://127.0.0.1:8080/prefix"


def test_settings_api_refuses_each_bad_value_with_key_and_bound(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        problems = []
        for fragment, key, bound in BAD:
            res = c.put("/api/setting", json=fragment)
            msg = res.json()["message"] if res.status_code == 400 else res.text
            if res.status_code != 400 or key not in msg or bound not in msg:
                problems.append((fragment, res.status_code, msg[:200]))
        assert not problems, problems
        assert c.get("/api/setting").json()["data"]["overrides"] == {}  # nothing was stored


def test_allow_private_urls_is_never_changeable_through_the_api(tmp_path, r, redis_url):
    for file_allows in (False, True):
        with gateway(tmp_path / f"data-{file_allows}", redis_url, http={"allow_private_urls": file_allows}) as c:
            for value in (True, False):
                res = c.put("/api/setting", json={"http": {"allow_private_urls": value}})
                assert res.status_code == 400, res.text
                assert "http.allow_private_urls: only the config file can allow private URLs" in res.text
            assert c.get("/api/setting").json()["data"]["overrides"] == {}


PRIVATE_BASE_URLS = {
    "http://127.0.0.1:9/": "loopback",
    "http://localhost:8000": "loopback name",
    "http://api.localhost./": "loopback name",
    "http://[::1]:80/": "loopback",
    "http://[::ffff:127.0.0.1]/": "loopback, IPv4 127.0.0.1 inside IPv6",
    "http://10.1.2.3/": "private",
    "http://169.254.169.254/": "link-local",
    "http://100.64.0.1/": "CGNAT",
    "http://2130706433/": "not a canonical IPv4",
    "http://0x7f.1/": "not a canonical IPv4",
    "http://[fe80::1%25lo]/": "scoped IPv6 literal",
    "http://no-such-host.invalid/": "does not resolve",
}


def test_a_private_base_url_is_refused_unless_the_config_file_allows_private_urls(tmp_path, r, redis_url):
    with gateway(tmp_path / "strict", redis_url) as c:
        problems = []
        for url, cls in PRIVATE_BASE_URLS.items():
            res = c.put("/api/setting", json={"sources": {"jable": {"base_url": url}}})
            if res.status_code != 400 or cls not in res.text or "sources.jable.base_url" not in res.text \
                    or "http.allow_private_urls in the config file" not in res.text:
                problems.append((url, res.status_code, res.text[:300]))
        assert not problems, problems
        assert c.get("/api/setting").json()["data"]["overrides"] == {}
        # A public address is accepted (nothing connects to it: the value is only stored).
        res = c.put("/api/setting", json={"sources": {"jable": {"base_url": "https://93.184.215.14"}}})
        assert res.status_code == 200, res.text
    with gateway(tmp_path / "lenient", redis_url, http={"allow_private_urls": True}) as c:
        res = c.put("/api/setting", json={"sources": {"jable": {"base_url": "http://127.0.0.1:9/"}}})
        assert res.status_code == 200, res.text
        assert res.json()["data"]["overrides"] == {"sources": {"jable": {"base_url": "http://127.0.0.1:9/"}}}


def test_the_config_files_own_private_base_url_stays_but_another_is_refused(tmp_path, r, redis_url):
    """The operator wrote 127.0.0.1:8081 in the config file: re-sending it is fine, moving it elsewhere
    on the private network is not."""
    mine = "http://127.0.0.1:8081"
    with gateway(tmp_path / "data", redis_url, sources={"jable": {"base_url": mine}}) as c:
        res = c.put("/api/setting", json={"sources": {"jable": {"base_url": mine, "weight": 5}}})
        assert res.status_code == 200, res.text
        res = c.put("/api/setting", json={"sources": {"jable": {"base_url": "http://127.0.0.1:6379"}}})
        assert res.status_code == 400 and "loopback" in res.text, res.text


def test_the_api_check_uses_one_resolver_answer_and_stored_overrides_start_without_dns(tmp_path):
    base = load(None, {}, data_dir=str(tmp_path))
    asked = []

    def rebinding(host, port):
        asked.append(host)
        return ["127.0.0.9"]

    with pytest.raises(overrides.SettingsError, match=r"cdn-mirror.test resolves to the non-public address "
                                                       r"127.0.0.9 \(loopback\)"):
        overrides.apply(base, {"sources": {"jable": {"base_url": "https://cdn-mirror.test"}}}, resolver=rebinding)
    assert asked == ["cdn-mirror.test"]
    # Start-up re-applies what was stored without asking DNS (an outage must not stop a process);
    # every fetch is checked again anyway.
    overrides.save(base.data_path, {"sources": {"jable": {"base_url": "https://no-such-host.invalid"}}})
    assert overrides.apply_stored(base).sources["jable"].base_url == "https://no-such-host.invalid"
