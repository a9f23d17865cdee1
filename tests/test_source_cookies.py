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


def test_refresh_cookie_actor_stores_the_home_page_cookie(tmp_path, r, redis_url):
    from actors.context import Context
    from actors.registry import declare
    from pipeline import cookies as cookie_store
    from pipeline.broker import make_broker
    from pipeline.events import Events

    with FixtureSite.start() as site:
        cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "d", redis_url=redis_url), {})
        ctx = Context.create(cfg, redis_url)
        broker = make_broker(redis_url, cfg.workers)
        actors = declare(broker, cfg, lambda: ctx)
        actors.by_name["refresh_cookie"].fn("jable")
        site.set_scenario("memo", "challenge_403")
        actors.by_name["refresh_cookie"].fn("memo")
        assert cookie_store.load(cfg.data_path) == {"jable": {"session_jable": "fixture-jable-0123456789"}}
        evs = Events(r).after("0")
        assert [(e.type, e.data["source"]) for e in evs] == [("cookie_updated", "jable"), ("warning", "memo")]
        assert "fixture-jable-0123456789" not in str(evs[0].data)  # masked in events
        assert "challenge" in evs[1].data["message"]
        broker.close()
        ctx.redis.close()


def test_jar_updates_from_many_threads_lose_nothing(tmp_path):
    """Every writer (the API's set and delete, the refresh actor) goes through one locked
    read-modify-write: concurrent updates of different sources keep each other's change."""
    import threading

    from pipeline import cookies as cookie_store

    names = [f"site{i}" for i in range(8)]

    def writer(name: str) -> None:
        for n in range(15):
            cookie_store.put(tmp_path, name, {"n": str(n)})
            cookie_store.put(tmp_path, name, {"extra": "1"}, merge=True)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cookie_store.load(tmp_path) == {n: {"n": "14", "extra": "1"} for n in names}
    assert cookie_store.drop(tmp_path, "site3") is True
    assert cookie_store.drop(tmp_path, "site3") is False
    assert "site3" not in cookie_store.load(tmp_path)
    assert oct(cookie_store.path(tmp_path).stat().st_mode & 0o777) == oct(cookie_store.MODE)
