"""One rule for "the library already holds it", asked by every submit: the gateway's API
answers and the worker-side submit (the subscription sweep) say the same thing, on a real Redis."""

from __future__ import annotations

import pytest

from pipeline.avid import parse
from pipeline.jobs import Jobs
from pipeline.redis_client import connect
from pipeline.store import ResourceStore
from pipeline.submit import IN_LIBRARY, QUEUED, in_library, submit
from tests.api_helpers import gateway, put_resource


@pytest.fixture
def lib(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "ABC-001", video=True)
    put_resource(data, "ABC-002")  # metadata and cover, no video
    put_resource(data, "ABC-003", cover=False)  # metadata only: not yet in the library
    with gateway(data, redis_url) as c:
        c.data = data
        yield c


def test_the_gateway_and_the_worker_side_refuse_alike(lib, redis_url):
    store = ResourceStore(lib.data)
    client = connect(redis_url)
    started: list[tuple[str, str]] = []
    try:
        jobs = Jobs(client)
        for code, kind, refused in [("ABC-001", "download", True), ("ABC-002", "metadata", True),
                                    ("ABC-002", "download", False), ("ABC-003", "metadata", False)]:
            held = in_library(store, parse(code), kind)
            assert (held is not None) == refused, (code, kind)
            got = submit(jobs, store, parse(code), kind, lambda a, j: started.append((a, j)))
            assert got.status == (IN_LIBRARY if refused else QUEUED), (code, kind)
            if refused:
                assert got.message == held.message
            else:
                jobs.finish(got.job_id, code, "cancelled")
    finally:
        client.close()
    assert [a for a, _ in started] == ["ABC-002", "ABC-003"]

    r = lib.post("/api/downloads/ABC-001")
    assert r.status_code == 409
    assert r.json()["message"] == "ABC-001 is already downloaded"
    assert r.json()["data"] == {"avid": "ABC-001", "status": "downloaded"}
    r = lib.post("/api/resource", json={"avid": "abc-002"})
    assert r.status_code == 409
    assert r.json()["message"] == "ABC-002 is already in the library; refresh it to fetch its metadata again"
    assert r.json()["data"] == {"avid": "ABC-002", "status": "exists"}
    # A refresh fetches what the library holds again: the rule does not refuse it.
    assert lib.post("/api/resource/refresh/ABC-002").status_code == 202
