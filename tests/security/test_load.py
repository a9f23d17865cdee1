"""Load on the real gateway (uvicorn on loopback, real Redis): many submits at once.

500 submits from one client, each on its own connection and all in flight together, must
never meet a 503: the gateway's Redis connections come from a blocking pool that waits for
a free connection instead of failing when all are busy.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.figures import record
from tests.live_server import live_gateway
from tests.security.raw_http import burst, request_bytes

N = 500


def _codes(answers) -> Counter:
    return Counter(a.status for a in answers)


def test_500_concurrent_submits_of_distinct_avids_are_all_accepted(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url) as gw:
        reqs = [request_bytes("POST", f"/api/downloads/LOAD-{i + 1:04d}", gw.port) for i in range(N)]
        answers, wall_s = asyncio.run(burst(gw.port, reqs))
    codes = _codes(answers)
    record("500 concurrent submits", case="distinct AVIDs", wall_s=round(wall_s, 2),
           **{f"n_{k}": v for k, v in sorted(codes.items())})
    assert codes == {202: N}, (codes, [a.body[:200] for a in answers if a.status != 202][:3])
    # Every claim was taken once, by the request that answered 202.
    assert len({a.json()["data"]["job_id"] for a in answers}) == N
    assert r.llen("nassav-dramatiq:metadata") == N


def test_500_concurrent_submits_of_one_avid_give_one_202_and_409s(tmp_path, r, redis_url):
    with live_gateway(tmp_path / "data", redis_url) as gw:
        reqs = [request_bytes("POST", "/api/downloads/SAME-001", gw.port)] * N
        answers, wall_s = asyncio.run(burst(gw.port, reqs))
    codes = _codes(answers)
    record("500 concurrent submits", case="one AVID", wall_s=round(wall_s, 2),
           **{f"n_{k}": v for k, v in sorted(codes.items())})
    assert codes == {202: 1, 409: N - 1}, (codes, [a.body[:200] for a in answers
                                                   if a.status not in (202, 409)][:3])
    accepted = next(a.json()["data"]["job_id"] for a in answers if a.status == 202)
    assert {a.json()["data"]["job_id"] for a in answers} == {accepted}
    assert r.llen("nassav-dramatiq:metadata") == 1
