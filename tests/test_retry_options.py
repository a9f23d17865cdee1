"""A retry repeats what its job was asked (a refresh's ``refresh`` and ``source_pref``, an asked
edition), and a cancelled job may be retried through the same submit path (claims apply).
Real Redis, real SQLite index; the jobs are made through the real routes where one exists."""

from __future__ import annotations

from pipeline.jobs import Jobs
from tests.api_helpers import gateway, settle

SOURCE = "jable"  # one of the default sources (config.sources)


def _retry(c, avid: str) -> dict:
    res = c.post(f"/api/resource/{avid}/retry")
    assert res.status_code == 202, res.json()
    return res.json()["data"]


def test_a_retried_refresh_keeps_its_refresh_parts_and_preferred_source(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        # A refresh from nassav's own API, preferring one source (the batch route takes a source).
        res = c.post("/api/resources/batch", json={"actions": [{"action": "refresh", "avid": "RFR-001",
                                                                 "source": SOURCE}]})
        assert res.status_code == 202, res.json()
        first = res.json()["data"]["results"][0]
        assert first["code"] == 202, first
        job_id = first["data"]["job_id"]
        asked = jobs.get(job_id)
        assert (asked["kind"], asked["refresh"], asked["source_pref"]) == ("metadata", "m3u8,metadata", SOURCE)
        jobs.finish(job_id, "RFR-001", "failed", message="scrape: broken", stage="scrape")
        settle(c)

        data = _retry(c, "RFR-001")
        assert (data["stage"], data["kind"], data["retry_of"]) == ("scrape", "metadata", job_id)
        assert data["options"] == {"refresh": "m3u8,metadata", "source_pref": SOURCE}
        again = jobs.get(data["job_id"])
        assert (again["refresh"], again["source_pref"], again["start_stage"]) == ("m3u8,metadata", SOURCE, "scrape")

        # A retry of the retry still carries them (its own queued event repeats them).
        jobs.finish(data["job_id"], "RFR-001", "failed", message="scrape: broken again", stage="scrape")
        settle(c)
        third = jobs.get(_retry(c, "RFR-001")["job_id"])
        assert (third["refresh"], third["source_pref"], third["retry_of"]) == ("m3u8,metadata", SOURCE,
                                                                             data["job_id"])


def test_the_old_clients_refresh_parts_and_an_asked_edition_are_repeated(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        # What gateway/compat/adding.py puts on a refresh of the playlist alone.
        only_m3u8 = jobs.submit("RFR-002", "metadata", fields={"refresh": "m3u8", "source_pref": SOURCE})
        jobs.finish(only_m3u8.job_id, "RFR-002", "failed", message="all sources failed", stage="resolve")
        res = c.post("/api/downloads/RFR-003-C")  # asks for the Chinese-subtitled edition
        assert res.status_code == 202, res.json()
        edition_job = res.json()["data"]["job_id"]
        jobs.finish(edition_job, "RFR-003", "failed", message="no source has edition C", stage="resolve")
        settle(c)

        got = jobs.get(_retry(c, "RFR-002")["job_id"])
        assert (got["refresh"], got["source_pref"]) == ("m3u8", SOURCE)
        data = _retry(c, "RFR-003")
        assert data["options"] == {"edition": "C"} and jobs.get(data["job_id"])["edition"] == "C"
        assert "refresh" not in jobs.get(data["job_id"])  # nothing asked is made up


def test_a_cancelled_job_may_be_retried_and_claims_still_apply(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        jobs = Jobs(r)
        res = c.post("/api/downloads/CNX-001")
        assert res.status_code == 202
        cancelled = res.json()["data"]["job_id"]
        assert c.delete("/api/downloads/CNX-001").status_code == 200  # cancelled while queued
        settle(c)
        data = _retry(c, "CNX-001")
        assert (data["kind"], data["stage"], data["retry_of"]) == ("download", "resolve", cancelled)
        assert jobs.live_job("CNX-001") == data["job_id"]
        res = c.post("/api/resource/CNX-001/retry")  # the retry holds the claim now
        assert res.status_code == 409 and data["job_id"] in res.json()["message"]

        # Cancelled while downloading: the retry starts at the stage it was stopped in.
        jobs.finish(data["job_id"], "CNX-001", "cancelled", message="cancelled while downloading",
                    stage="download")
        settle(c)
        again = _retry(c, "CNX-001")
        assert (again["stage"], again["retry_of"]) == ("download", data["job_id"])

        # A completed job is still not retried (submit a new one instead).
        jobs.finish(again["job_id"], "CNX-001", "completed", stage="download")
        settle(c)
        res = c.post("/api/resource/CNX-001/retry")
        assert res.status_code == 400 and "only a failed or cancelled job is retried" in res.json()["message"]


def test_nassav_retry_says_which_options_it_repeated(tmp_path, r, redis_url):
    import io

    from rich.console import Console

    from gateway.cli.client import ApiClient
    from gateway.cli.history import retry
    from tests.conftest import wait_for
    from tests.live_server import live_gateway

    with live_gateway(tmp_path / "data", redis_url) as g:
        jobs = Jobs(r)
        job = jobs.submit("RFR-004", "metadata", fields={"refresh": "m3u8,metadata", "source_pref": SOURCE})
        jobs.finish(job.job_id, "RFR-004", "cancelled", message="cancelled", stage="cover")
        wait_for(lambda: g.st.index.attempts("RFR-004")[0][:1] and
                 g.st.index.attempts("RFR-004")[0][0]["status"] == "cancelled", 10, 0.02, "the history")
        out = io.StringIO()
        assert retry(ApiClient(g.base), "RFR-004", console=Console(file=out, width=200)) == 0
        assert "RFR-004: queued again from cover" in out.getvalue()
        assert f"refresh=m3u8,metadata, source_pref={SOURCE})" in out.getvalue()
