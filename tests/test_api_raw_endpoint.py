"""The submit route answers without a response object (gateway/api/common.py::RawEndpoint, issue
13): the same status, headers and bytes as ``envelope()`` on every outcome, under /api and the old
client's /nassav/api, and errors still reach the app's handlers. Real Redis."""

from __future__ import annotations

import asyncio

from gateway.api.common import RawEndpoint, envelope, envelope_bytes
from pipeline import blocklist as bl
from tests.api_helpers import gateway, put_resource

SAMPLES = [(None, 200, "ok"), ({"avid": "ABC-123", "job_id": "f" * 32, "status": "exists"}, 409, "已经 ✓ \u2028"),
           ([1, 2.5, True, {"x": [None]}], 202, 'quote " and \\ back')]


def test_envelope_bytes_are_json_responses_bytes():
    for data, code, message in SAMPLES:
        assert envelope_bytes(data, code=code, message=message) == envelope(data, code=code, message=message).body


def test_a_raw_endpoint_sends_what_the_envelope_would():
    async def fn(st, params):
        return params["code"], params["message"], params["data"]

    endpoint = RawEndpoint(fn)
    for data, code, message in SAMPLES:
        sent: list[dict] = []

        async def send(m: dict) -> None:
            sent.append(m)

        class App:
            class state:
                nassav = None
        scope = {"type": "http", "app": App, "path_params": {"code": code, "message": message, "data": data}}
        asyncio.run(endpoint(scope, None, send))
        want = envelope(data, code=code, message=message)
        assert sent == [{"type": "http.response.start", "status": code, "headers": want.raw_headers},
                        {"type": "http.response.body", "body": want.body}]


def test_every_submit_outcome_answers_the_envelopes_bytes(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, "HAS-001", video=True)
    bl.Blocklist(r).add_avid("BLK-001", reason="not wanted")
    with gateway(data, redis_url) as c:
        seen = []
        for prefix in ("/api", "/nassav/api"):
            for path, code in ((f"RAW-00{len(prefix)}", 202), (f"RAW-00{len(prefix)}", 409), ("HAS-001", 409),
                               ("BLK-001", 403), ("not%20an%20avid!", 400)):
                res = c.post(f"{prefix}/downloads/{path}")
                body = res.json()
                assert res.status_code == body["code"] == code, (prefix, path, body)
                assert res.content == envelope(body["data"], code=code, message=body["message"]).body
                assert res.headers["content-type"] == "application/json"
                assert res.headers["content-length"] == str(len(res.content))
                seen.append(body["message"])
        assert "RAW-004 queued" in seen and any("already has a job" in m for m in seen)
        assert any("already downloaded" in m for m in seen) and any("blocklist" in m.lower() for m in seen)
        # The batch route beside it is not taken for an AVID called batch_submit.
        res = c.post("/api/downloads/batch_submit", json={"avids": ["RAW-100"]})
        assert res.status_code == 202 and res.json()["data"]["accepted"] == 1
        # Other methods on the path still reach their own routes.
        assert c.delete("/api/downloads/RAW-100").status_code == 200
        assert c.get("/api/downloads/RAW-100").status_code == 405
