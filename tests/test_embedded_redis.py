"""The embedded Redis: private, persistent (AOF), never on 6379, stopped cleanly."""

import os
import subprocess
import sys

import redis

from pipeline.embedded_redis import EmbeddedRedis
from tests.conftest import ROOT
from tests.e2e_helpers import wait_gone


def test_persists_across_restarts_and_leaves_nothing_running(tmp_path):
    srv = EmbeddedRedis(tmp_path)
    url = srv.start()
    assert url.startswith("unix://") and ":6379" not in url
    pid = int((tmp_path / ".redis" / "redis.pid").read_text())
    c = redis.Redis.from_url(url)
    c.set("nassav:test", "kept")
    c.xadd("nassav:events", {"type": "queued"})
    c.close()
    srv.stop()
    assert wait_gone(pid)
    assert (tmp_path / ".redis" / "appendonlydir").exists() or list((tmp_path / ".redis").glob("*.aof"))

    srv2 = EmbeddedRedis(tmp_path)
    c = redis.Redis.from_url(srv2.start())
    try:
        assert c.get("nassav:test") == b"kept"
        assert c.xlen("nassav:events") == 1
    finally:
        c.close()
        srv2.stop()


def test_long_data_dir_falls_back_to_a_free_tcp_port(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    with EmbeddedRedis(deep) as srv:
        assert srv.url.startswith("redis://127.0.0.1:") and not srv.url.endswith(":6379/0")
        assert redis.Redis.from_url(srv.url).ping()


def test_bad_config_stops_up_with_one_line_naming_the_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("download:\n  concurency: 4\n")
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "up", "--config", str(cfg),
                        "--data-dir", str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items() if k != "REDIS_URL"})
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "download.concurency" in lines[0] and "unknown key" in lines[0]
    assert not (tmp_path / "d" / ".redis").exists()  # nothing was started
