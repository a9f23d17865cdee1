"""`nassav add|status|reindex` as a user runs them: subprocesses against `nassav up` (with a
token) and the fixture site. Exit codes say success or failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, stop_group
from tests.e2e_helpers import Service
from tools.fixture_site import FixtureSite

TOKEN = "cli-test-token"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    site = FixtureSite.start(titles=("DEMO-001", "DEMO-002", "DEMO-003"), duration_s=6.0, segment_s=2.0)
    data = tmp / "data"
    data.mkdir()
    cfg = site.write_config(tmp / "config.yaml", data_dir=data)
    svc = Service(cfg, data, env_extra={"NASSAV_API_TOKEN": TOKEN}, drop_redis_env=True)
    try:
        svc.wait_ready()
        yield svc
    finally:
        # Short grace: nothing of ours runs by then (a download worker that ignores SIGINT is
        # the supervisor's business, tested elsewhere); the group is killed after it.
        stop_group(svc.proc, signal.SIGINT, timeout_s=10)
        svc.log.close()
        site.stop()


def nassav(*args: str, token: str | None = TOKEN, timeout_s: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NASSAV_API_TOKEN", "NASSAV_URL")}
    if token:
        env["NASSAV_API_TOKEN"] = token
    env["COLUMNS"] = "160"
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def test_add_follow_downloads_and_exits_zero(service):
    p = nassav("add", "demo-001", "DEMO-002", "--follow", "--url", service.base)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "completed  DEMO-001" in p.stdout and "completed  DEMO-002" in p.stdout
    for code in ("DEMO-001", "DEMO-002"):
        assert (service.data_dir / code / f"{code}.mp4").stat().st_size > 0
    again = nassav("add", "DEMO-001", "--url", service.base)
    assert again.returncode == 0 and "done already" in again.stdout


def test_add_reports_failures_with_a_nonzero_exit(service):
    p = nassav("add", "NOPE-404", "--follow", "--url", service.base)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "failed" in p.stdout and "NOPE-404" in p.stdout
    bad = nassav("add", "not an avid!", "--url", service.base)
    assert bad.returncode == 1 and "refused" in bad.stdout and "accepted forms" in bad.stdout


def test_add_metadata_only(service):
    p = nassav("add", "DEMO-003", "--no-download", "--follow", "--url", service.base)
    assert p.returncode == 0, p.stdout + p.stderr
    folder = service.data_dir / "DEMO-003"
    assert json.loads((folder / "DEMO-003.json").read_text())["avid"] == "DEMO-003"
    assert (folder / "DEMO-003.jpg").exists() and not (folder / "DEMO-003.mp4").exists()


def test_status_and_token_errors(service):
    p = nassav("status", "--url", service.base)
    assert p.returncode == 0, p.stderr
    assert "queues" in p.stdout and "metadata" in p.stdout and "download" in p.stdout
    assert "workers (2 live)" in p.stdout
    j = nassav("status", "--json", "--url", service.base)
    assert j.returncode == 0 and len(json.loads(j.stdout)["workers"]) == 2
    wrong = nassav("status", "--url", service.base, "--token", "wrong")
    assert wrong.returncode == 3 and "token" in wrong.stderr
    down = nassav("status", "--url", "http://127.0.0.1:9", token=None)
    assert down.returncode == 3 and "cannot reach" in down.stderr


def test_reindex_rebuilds_from_the_data_dir(service, tmp_path):
    p = nassav("reindex", "--data-dir", str(service.data_dir))
    assert p.returncode == 0, p.stderr
    assert "indexed 3 resources (2 downloaded, 1 pending)" in p.stdout


def test_reindex_of_a_missing_data_dir_is_refused_and_makes_nothing(tmp_path, capsys):
    from gateway.cli.main import main

    missing = tmp_path / "no-such-dir"
    assert main(["reindex", "--data-dir", str(missing)]) == 2
    assert f"no data dir at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_websocket_subprotocol_token_on_the_real_server(service):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{service.port}/ws/tasks/"
    with connect(url, subprotocols=["bearer", TOKEN], open_timeout=10) as ws:
        assert ws.subprotocol == "bearer"
        assert json.loads(ws.recv(timeout=10))["type"] == "queue_status"
    with pytest.raises(InvalidStatus) as e:
        with connect(url, open_timeout=10):
            pass
    # The handshake gets the same answer as HTTP (ASGI's denial response), not a bare 403.
    assert e.value.response.status_code == 401 and b"API token is required" in e.value.response.body
