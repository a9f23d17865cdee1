"""`nassav upgrade AVID [--follow]` as a user runs it: subprocesses against `nassav up` and the
fixture site. 404 (nothing downloaded) and 409 (a job holds the title) exit 1 with a message
saying why; a queued upgrade exits 0, and with --follow says which edition the library holds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, stop_group, wait_for
from tests.e2e_helpers import Service, http
from tests.test_cli import nassav as _nassav
from tools.fixture_site import FixtureSite


@pytest.fixture
def svc(tmp_path, redis_url):
    site = FixtureSite.start(titles=("DEMO-001",), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    data = tmp_path / "data"
    data.mkdir()
    cfg = site.write_config(tmp_path / "config.yaml", data_dir=data, redis_url=redis_url,
                            extra={"download": {"editions": ["C", "regular"]}})
    service = Service(cfg, data)
    try:
        service.wait_ready()
        service.site = site
        yield service
    finally:
        service.stop()
        site.stop()


def nassav(*args: str):
    return _nassav(*args, token=None)


def _live(svc) -> bool:
    d = http("GET", svc.base + "/api/tasks/queue/status")[1]["data"]
    return any(j.get("avid") == "DEMO-001" for j in d.get("active_tasks", []) + d.get("pending_tasks", []))


def test_upgrade_from_the_command_line(svc):
    none = nassav("upgrade", "DEMO-001", "--url", svc.base)
    assert none.returncode == 1 and "nothing to upgrade" in none.stdout and "download it first" in none.stdout, \
        none.stdout + none.stderr
    assert nassav("add", "DEMO-001", "--follow", "--url", svc.base).returncode == 0

    same = nassav("upgrade", "demo-001", "--follow", "--url", svc.base)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "queued  DEMO-001" in same.stdout and "preferred to regular (download.editions: C, regular)" in same.stdout
    assert "DEMO-001: unchanged, still regular" in same.stdout

    svc.site.add_edition("DEMO-001", "C", ["jable"])
    svc.site.set_faults(latency_ms=2500)  # the upgrade holds its claim for seconds, even when the CLI starts slowly on a busy machine
    env_cmd = [sys.executable, "-m", "gateway.cli", "upgrade", "DEMO-001", "--follow", "--url", svc.base]
    follow = subprocess.Popen(env_cmd, cwd=ROOT, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: _live(svc), 30, 0.1, "the upgrade job")
        busy = nassav("upgrade", "DEMO-001", "--url", svc.base)
        assert busy.returncode == 1 and "busy" in busy.stdout and "job in progress" in busy.stdout, \
            busy.stdout + busy.stderr
        out, err = follow.communicate(timeout=120)
    finally:
        if follow.poll() is None:
            stop_group(follow)
    assert follow.returncode == 0, out + err
    assert "completed  DEMO-001" in out and "DEMO-001: upgraded to C" in out


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("NASSAV_API_TOKEN", "NASSAV_URL")} | {"COLUMNS": "160"}
