"""``redis+sentinel://`` URLs: parsed in one place, refused with the accepted form, never logged
with a password, and every client kind (sync, the gateway's asyncio pool, Dramatiq's broker)
reaches the Sentinels' master and follows it through a real failover (tests/sentinel_helpers.py,
running deploy/sentinel/'s redis.conf and sentinel.conf).
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from gateway.redis_pool import open_client
from pipeline.broker import make_broker, pending_job_ids
from pipeline.config import WorkerConfig, load
from pipeline.errors import ConfigError
from pipeline.redis_client import RedisUrlError, connect, parse_sentinel, redact
from tests.conftest import ROOT, wait_for
from tests.sentinel_helpers import SentinelSet

DEPLOY = ROOT / "deploy" / "sentinel"


@pytest.mark.parametrize("url, sentinels, service, db, password, sentinel_password", [
    ("redis+sentinel://h1:26379,h2:26379/mymaster/0", (("h1", 26379), ("h2", 26379)), "mymaster", 0, None, None),
    ("redis+sentinel://h1,h2:26380/m", (("h1", 26379), ("h2", 26380)), "m", 0, None, None),
    ("redis+sentinel://:s%40cret@h1/m/3?sentinel_password=sp", (("h1", 26379),), "m", 3, "s@cret", "sp"),
    ("redis+sentinel://p@ss@[::1]:5000/m", (("::1", 5000),), "m", 0, "p@ss", None),
])
def test_the_sentinel_form_parses(url, sentinels, service, db, password, sentinel_password):
    u = parse_sentinel(url)
    assert (u.sentinels, u.service, u.db, u.password, u.sentinel_password) == \
        (sentinels, service, db, password, sentinel_password)
    assert load(None, {}, redis_url=url).redis_url == url


@pytest.mark.parametrize("url, why", [
    ("redis+sentinel://h1:26379", "service name"),
    ("redis+sentinel://h1/m/zero", "database number"),
    ("redis+sentinel://h1,,h2/m", "host is empty"),
    ("redis+sentinel://h1:99999/m", "host[:port]"),
    ("redis+sentinel://h1/m?password=x", "unknown parameter"),
])
def test_a_bad_sentinel_url_names_the_form(url, why):
    with pytest.raises(RedisUrlError) as e:
        parse_sentinel(url)
    assert why in str(e.value) and "redis+sentinel://" in str(e.value)
    with pytest.raises(ConfigError) as c:
        load(None, {}, redis_url=url)
    assert why in str(c.value) and "host1[:26379]" in str(c.value)


def test_other_schemes_are_refused_naming_both_forms():
    with pytest.raises(ConfigError) as e:
        load(None, {}, redis_url="sentinel://:hunter2@h/m")
    assert "redis://" in str(e.value) and "redis+sentinel://" in str(e.value)
    assert "hunter2" not in str(e.value)


def test_passwords_never_reach_the_log_line():
    url = "redis+sentinel://user:hunter2@h1,h2/m/1?sentinel_password=swordfish"
    for text in (redact(url), repr(parse_sentinel(url))):
        assert "hunter2" not in text and "swordfish" not in text and "h1" in text
    with pytest.raises(RedisUrlError) as e:
        parse_sentinel("redis+sentinel://:hunter2@h1/m/x?sentinel_password=swordfish")
    assert "hunter2" not in str(e.value) and "swordfish" not in str(e.value)
    assert redact("redis://:pw@host:6379/0") == "redis://***@host:6379/0"


@pytest.fixture
def sentinels(tmp_path):
    """The set as deploy/sentinel/ configures it (its files, with loopback ports, a temp dir
    and a 1 s down-after in place of the machine-specific lines)."""
    s = SentinelSet(tmp_path / "sentinel", password="change-me", service="nassav",
                    redis_conf=DEPLOY / "redis.conf", sentinel_conf=DEPLOY / "sentinel.conf")
    try:
        yield s.start()
    finally:
        s.stop()


def test_every_client_kind_follows_a_failover(sentinels):
    s = sentinels
    url = s.url
    sync = connect(url, socket_timeout=2, socket_connect_timeout=1)
    broker = make_broker(url, WorkerConfig(), socket_timeout_s=2.0)
    gw_settings = load(None, {}).gateway
    try:
        sync.set("nassav:sentinel-test", "before")
        assert sync.get("nassav:sentinel-test") == "before"  # decoded, through the master
        assert s.direct("a").get("nassav:sentinel-test") == "before"
        from actors.registry import declare
        actors = declare(broker, load(None, {}))
        actors.start("SEN-001", "job-before")
        assert "job-before" in pending_job_ids(sync)
        assert sync.wait(1, 5000) == 1  # replicated before the master goes

        async def gateway_reads():
            client = open_client(url, gw_settings)
            try:
                return await client.get("nassav:sentinel-test")
            finally:
                await client.aclose()
        assert asyncio.run(gateway_reads()) == "before"

        s.kill("a")
        wait_for(lambda: s.master_name() == "b", 60, 0.2, "the Sentinels to promote b")

        def writes_again():
            try:
                return sync.set("nassav:sentinel-test", "after")
            except redis.ConnectionError:
                return False
        wait_for(writes_again, 30, 0.2, "the sync client to write on the new master")
        assert s.direct("b").get("nassav:sentinel-test") == "after"
        assert "job-before" in pending_job_ids(sync), "a replicated message survives the failover"

        def broker_sends():
            try:
                actors.start("SEN-002", "job-after")
                return True
            except redis.ConnectionError:
                return False
        wait_for(broker_sends, 30, 0.2, "the broker to send to the new master")
        assert {"job-before", "job-after"} <= pending_job_ids(s.direct("b"))
        assert asyncio.run(gateway_reads()) == "after"
    finally:
        sync.close()
        broker.close()



def test_the_gateway_confirms_a_job_on_a_replica_before_202(sentinels, caplog):
    import os
    import signal

    from gateway.replication import Replication

    s = sentinels
    settings = load(None, {}, gateway={"redis_wait_timeout_ms": 300}).gateway

    async def confirm(job_id):
        client = open_client(s.url, settings)
        try:
            await client.set(f"nassav:job:{job_id}", "x")
            return await Replication.for_pool(client, 1, settings.redis_wait_timeout_ms).confirm("SEN-003", job_id)
        finally:
            await client.aclose()

    assert asyncio.run(confirm("j1")) == 1
    assert s.direct("b").get("nassav:job:j1") == "x"
    # A replica that does not answer while the Sentinels still name this master: the wait
    # ends at its timeout, the job is accepted anyway and the log says a failover could lose it.
    replica = s.procs["b"].pid
    os.kill(replica, signal.SIGSTOP)
    try:
        with caplog.at_level("WARNING", logger="nassav.gateway"):
            assert asyncio.run(confirm("j2")) == 0
    finally:
        os.kill(replica, signal.SIGCONT)
    assert "only 0 of 1 replica" in caplog.text
    wait_for(lambda: s.direct("b").get("nassav:job:j2") == "x", 10, 0.1, "the replica to catch up")


def test_a_planned_failover_moves_clients_off_the_demoted_master(sentinels):
    """``SENTINEL FAILOVER``: the old master lives on as a replica, so a kept connection to it
    gets READONLY; the clients must drop it and write on the new master, not fail."""
    s = sentinels
    sync = connect(s.url, socket_timeout=2, socket_connect_timeout=1)
    settings = load(None, {}).gateway

    async def gateway_writes(client, value):
        await client.set("nassav:planned", value)
        return await client.get("nassav:planned")

    async def scenario():
        client = open_client(s.url, settings)
        try:
            assert await gateway_writes(client, "1") == "1"  # the pool now holds a connection to a
            sync.set("nassav:planned-sync", "1")
            with redis.Redis(host="127.0.0.1", port=s.sentinel_ports[0], socket_timeout=2) as sen:
                sen.execute_command("SENTINEL", "FAILOVER", s.service)
            # Writes the old master takes between b's promotion and its own demotion are lost
            # (it resyncs from b): that is what the gateway's replica confirmation catches.
            await asyncio.to_thread(wait_for, lambda: s.master_name() == "b" and
                                    s.direct("a").info("replication")["role"] == "slave", 60, 0.2,
                                    "the Sentinels to promote b and demote a")

            async def write_ok():
                try:
                    return await gateway_writes(client, "2") == "2"
                except redis.ConnectionError:
                    return False
            deadline = asyncio.get_running_loop().time() + 30
            while not await write_ok():
                assert asyncio.get_running_loop().time() < deadline, "the gateway pool never wrote on b"
                await asyncio.sleep(0.2)
        finally:
            await client.aclose()

    try:
        asyncio.run(scenario())

        def sync_writes():
            try:
                return sync.set("nassav:planned-sync", "2")
            except redis.ConnectionError:
                return False
        wait_for(sync_writes, 30, 0.2, "the sync client to write on b")
        assert s.direct("b").get("nassav:planned") == "2" and s.direct("b").get("nassav:planned-sync") == "2"
        assert s.direct("a").info("replication")["role"] == "slave"
    finally:
        sync.close()


def test_a_job_written_to_a_replaced_master_is_refused_with_503(sentinels, r, redis_url):
    """The wait falls short on a server the Sentinels do not name master (here a standalone
    one, as the old master is during a failover): the gateway must not answer 202."""
    from gateway.replication import FailoverUnderWay, Replication

    s = sentinels
    settings = load(None, {}).gateway

    async def confirm():
        via_sentinels = open_client(s.url, settings)
        elsewhere = open_client(redis_url, settings)
        try:
            pool = via_sentinels.connection_pool
            rep = Replication(elsewhere, 1, 200, sentinels=(pool.sentinel_manager, pool.service_name))
            await rep.confirm("SEN-004", "j4")
        finally:
            await via_sentinels.aclose()
            await elsewhere.aclose()
    with pytest.raises(FailoverUnderWay) as e:
        asyncio.run(confirm())
    assert "failover" in str(e.value) and "SEN-004" in str(e.value)
    assert isinstance(e.value, redis.ConnectionError)  # the gateway's handler answers 503


def test_without_sentinels_the_gateway_does_not_wait(redis_url):
    from gateway.replication import Replication

    async def confirm():
        client = open_client(redis_url, load(None, {}).gateway)
        try:
            return await Replication.for_pool(client, 1, 5000).confirm("SEN-005", "j5")
        finally:
            await client.aclose()
    assert asyncio.run(confirm()) is None
