"""Dashboard POSTs need the bearer header or the page's own origin: its double-submit CSRF
cookie and the ``nassav_token`` cookie can both be set or ridden by a page on another local
port (cookies ignore ports; SameSite counts other ports of 127.0.0.1 as the same site)."""

from __future__ import annotations

import pytest

from tests.api_helpers import gateway

TOKEN = "dashboard-token-0123456789"
OWN = "http://testserver"  # the TestClient's origin (Host: testserver)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BODY = "__dd_csrf=forged&queue=download&id=nope"


@pytest.fixture(params=[None, TOKEN], ids=["no-token", "token"])
def dash(request, tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url, api_token=request.param) as c:
        if request.param:
            assert c.get(f"/dashboard/?token={TOKEN}").status_code == 200  # sets the nassav_token cookie
        c.cookies.set("__dd_csrf", "forged")  # what another local port can set for 127.0.0.1
        c.token = request.param
        yield c


def post(c, path: str = "/dashboard/requeue-message", **headers: str):
    return c.post(path, content=BODY, headers={**FORM, **headers}, follow_redirects=False)


def reached(res) -> bool:
    """The dashboard's own handler answered (410: no such message; its CSRF check passed)."""
    return res.status_code == 410


def test_cookies_alone_are_refused(dash):
    for headers in ({}, {"Referer": "http://127.0.0.1:9999/page"}, {"Origin": "null"},
                    {"Referer": "http://testserver.evil.example/"}):
        res = post(dash, **headers)
        assert res.status_code == 403, (headers, res.status_code, res.text)
    res = post(dash)
    assert "cookie alone is not enough" in res.json()["message"]
    res = post(dash, "/dashboard/delete-message", Origin="http://127.0.0.1:9999")
    assert res.status_code == 403 and "cors_origins" in res.json()["message"]


def test_same_origin_or_bearer_header_reach_the_dashboard(dash):
    assert reached(post(dash, Origin=OWN))
    assert reached(post(dash, Referer=OWN + "/dashboard/queues/download"))  # no Origin: Referer decides
    bearer = f"Bearer {dash.token or 'anything'}"
    dash.cookies.delete("nassav_token", path="/dashboard")
    assert reached(post(dash, Authorization=bearer))
    if dash.token:
        # The header must still be the right token: the guard only stands before auth.
        assert post(dash, Authorization="Bearer wrong").status_code == 403
        # The page itself still opens with the cookie.
        assert dash.get(f"/dashboard/?token={TOKEN}").status_code == 200
        assert dash.get("/dashboard/queues/download").status_code == 200
