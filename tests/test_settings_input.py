"""``PUT /api/setting`` with input of the wrong shape or size: a 400 naming the accepted form,
and the stored overrides left exactly as they were (real gateway on the real Redis)."""

from __future__ import annotations

from pipeline import overrides
from tests.api_helpers import gateway


def _refused(c, data, body, named: str) -> None:
    before = overrides.path(data).read_bytes() if overrides.path(data).exists() else None
    res = c.put("/api/setting", json=body)
    assert res.status_code == 400, (body, res.status_code, res.text)
    assert named in res.json()["message"], res.text
    after = overrides.path(data).read_bytes() if overrides.path(data).exists() else None
    assert after == before, "a refused change must leave settings.json as it was"


def test_an_object_sent_over_a_stored_plain_value_is_a_400(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        res = c.put("/api/setting", json={"log_level": "DEBUG", "download": {
            "concurrency": 4, "bandwidth": [{"hours": "08:00-23:00", "limit": "2MiB/s"}]}})
        assert res.status_code == 200, res.text
        _refused(c, data, {"log_level": {"level": "INFO"}}, "log_level: expected a string")
        _refused(c, data, {"download": {"concurrency": {"n": 8}}}, "download.concurrency: expected an integer")
        _refused(c, data, {"download": {"bandwidth": {"hours": "01:00-02:00"}}}, "download.bandwidth")
        assert c.get("/api/setting").json()["data"]["overrides"]["download"]["concurrency"] == 4


def test_numbers_too_big_for_a_float_are_a_400(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        _refused(c, data, {"download": {"bandwidth": [{"hours": "08:00-23:00", "limit": "9" * 400 + "MiB/s"}]}},
                 "download.bandwidth[0].limit: expected a rate")
        _refused(c, data, {"download": {"stall_timeout_s": 10 ** 400}}, "download.stall_timeout_s")
        _refused(c, data, {"http": {"timeout_s": 10 ** 400}}, "http.timeout_s")


def test_a_time_zone_name_too_long_for_a_file_name_is_a_400(tmp_path, r, redis_url):
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        _refused(c, data, {"download": {"timezone": "Asia" * 100}}, "IANA time zone name")
        _refused(c, data, {"download": {"timezone": "x" * 10_000}}, "IANA time zone name")


def test_a_stored_site_address_that_stopped_resolving_blocks_no_other_change(tmp_path, r, redis_url):
    """A base_url override accepted earlier whose host no longer resolves (the site moved): the
    next start applies it all the same (start-up checks no DNS), so GET says so, and changing
    another setting is not refused for it; a new address is still checked."""
    import json

    data = tmp_path / "data"
    data.mkdir()
    gone = "https://jable-moved.example.com"  # .example never resolves
    overrides.path(data).write_text(json.dumps({"sources": {"jable": {"base_url": gone}}}))
    with gateway(data, redis_url) as c:
        got = c.get("/api/setting").json()["data"]
        assert got["next_start"] is not None, "the next start applies the stored override"
        assert got["next_start"]["sources"]["jable"]["base_url"] == gone and got["restart_required"] is True
        res = c.put("/api/setting", json={"download": {"concurrency": 4}})
        assert res.status_code == 200, res.text
        assert res.json()["data"]["overrides"] == {"download": {"concurrency": 4},
                                                   "sources": {"jable": {"base_url": gone}}}
        _refused(c, data, {"sources": {"missav": {"base_url": "https://missav-moved.example.com"}}},
                 "sources.missav.base_url: host missav-moved.example.com does not resolve")


def test_a_bandwidth_limit_above_the_speed_limits_bound_is_a_400(tmp_path, r, redis_url):
    """A cap no rate limiter can hold (10**400 bytes/s overflows a float: after the next start
    every download under that cap failed with OverflowError) is refused, with the bound of
    download.speed_limit_bytes_per_s."""
    data = tmp_path / "data"
    with gateway(data, redis_url) as c:
        for limit in (10 ** 400, 10 ** 13, "5000GiB/s"):
            _refused(c, data, {"download": {"bandwidth": [{"hours": "08:00-23:00", "limit": limit}]}},
                     "download.bandwidth[0].limit: expected a rate")
        res = c.put("/api/setting", json={"download": {"bandwidth": [{"hours": "08:00-23:00", "limit": 10 ** 12}]}})
        assert res.status_code == 200, res.text
