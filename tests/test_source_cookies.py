import pytest

from pipeline.config import load
from pipeline.errors import ConfigError, SourceBlocked
from sources.cookies import fetch_home_cookies
from tools.fixture_site import FixtureSite


def test_home_page_cookies_or_a_clear_reason(tmp_path):
    with FixtureSite.start() as site:
        cfg = load(site.write_config(tmp_path / "c.yaml"), {})
        cookies = fetch_home_cookies("jable", cfg)
        assert cookies == {"session_jable": "fixture-jable-0123456789"}
        site.set_scenario("missav", "challenge_200")
        with pytest.raises(SourceBlocked) as e:
            fetch_home_cookies("missav", cfg)
        assert "challenge" in str(e.value)
        with pytest.raises(ConfigError):
            fetch_home_cookies("nosuchsite", cfg)
