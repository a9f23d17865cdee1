"""`nassav history|retry|block|unblock|blocklist` as a user runs them: subprocesses against
`nassav up` (with a token) and the fixture site."""

from __future__ import annotations

import json
import time

from pipeline.config import DEFAULT_SOURCES
from tests.test_cli import nassav, service  # noqa: F401 - the module's service fixture



def _history(service, avid: str, jobs: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        p = nassav("history", avid, "--json", "--url", service.base)
        assert p.returncode == 0, p.stdout + p.stderr
        got = json.loads(p.stdout)
        if (len(got) == jobs and all(j["ended_at"] for j in got)) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_block_list_and_unblock_an_avid(service):
    p = nassav("block", "nope-777", "--reason", "not wanted", "--url", service.base)
    assert p.returncode == 0 and "NOPE-777 is blocked" in p.stdout, p.stdout + p.stderr
    listed = nassav("blocklist", "--url", service.base)
    assert listed.returncode == 0 and "NOPE-777" in listed.stdout and "not wanted" in listed.stdout
    refused = nassav("add", "NOPE-777", "--url", service.base)
    assert refused.returncode == 1 and "blocklist" in refused.stdout, refused.stdout + refused.stderr
    assert nassav("unblock", "NOPE-777", "--url", service.base).returncode == 0
    again = nassav("unblock", "NOPE-777", "--url", service.base)
    assert again.returncode == 1 and "not on the blocklist" in again.stdout
    bad = nassav("block", "DEMO-001", "--source", "nosuchsite", "--url", service.base)
    assert bad.returncode == 1 and "configured source" in bad.stdout
    assert json.loads(nassav("blocklist", "--json", "--url", service.base).stdout) == []


def test_history_and_retry_of_a_failed_job(service):
    source = list(DEFAULT_SOURCES)[0]
    assert nassav("block", "NOPE-405", "--source", source, "--url", service.base).returncode == 0
    p = nassav("add", "NOPE-405", "--follow", "--url", service.base)
    assert p.returncode == 1, p.stdout + p.stderr
    (job,) = _history(service, "NOPE-405", 1)
    (resolve,) = [s for s in job["stages"] if s["stage"] == "resolve"]
    outcomes = {s["source"]: s["outcome"] for s in resolve["sources"]}
    assert outcomes[source] == "blocked by the user" and set(outcomes) == set(DEFAULT_SOURCES)
    assert all(o == "not found" for name, o in outcomes.items() if name != source)
    shown = nassav("history", "NOPE-405", "--url", service.base)
    assert shown.returncode == 0 and "failed" in shown.stdout and "blocked by the user" in shown.stdout

    r = nassav("retry", "NOPE-405", "--url", service.base)
    assert r.returncode == 0 and "queued again from resolve" in r.stdout, r.stdout + r.stderr
    jobs = _history(service, "NOPE-405", 2)
    assert [s["stage"] for s in jobs[0]["stages"]][0] == "queued"
    assert jobs[0]["stages"][0]["detail"]["retry_of"] == job["job_id"]
    none = nassav("retry", "NONE-999", "--url", service.base)
    assert none.returncode == 1 and "no job in its history" in none.stdout
    assert nassav("unblock", "NOPE-405", "--source", source, "--url", service.base).returncode == 0
