"""The OpenAPI document lists every route the app serves; /docs works offline."""

from __future__ import annotations

import re

from gateway.openapi import walk
from tests.api_helpers import gateway


def test_every_route_is_in_the_schema(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "nassav"
        paths = doc["paths"]
        served = list(walk(c.app.routes))
        assert len(served) > 40
        for path, method, _, _ in served:
            clean = re.sub(r"\{([^}:]+)(?::[^}]+)?\}", r"{\1}", path)
            assert clean in paths, clean
            verb = "get" if method in ("WEBSOCKET", "MOUNT") else method.lower()
            assert verb in paths[clean], (verb, clean)
            op = paths[clean][verb]
            assert op["summary"] and op["responses"], clean
        # Each family under both prefixes, with the documented parameters.
        for p in ("/api/resources/", "/nassav/api/resources/", "/api/downloads/{avid}", "/api/source/cookie",
                  "/api/setting", "/api/workers", "/api/resource/cover", "/ws/tasks/", "/health", "/metrics",
                  "/dashboard", "/api/resource/{avid}/history", "/api/resource/{avid}/retry", "/api/blocklist",
                  "/api/blocklist/{avid}", "/api/blocklist/{avid}/{source}"):
            assert p in paths, p
        assert {"get", "post", "delete"} <= set(paths["/api/blocklist/{avid}"])
        assert "403" in paths["/api/downloads/{avid}"]["post"]["responses"]  # the blocklist's refusal
        names = {x["name"] for x in paths["/api/resources/"]["get"]["parameters"]}
        assert {"search", "status", "sort_by", "order", "page", "page_size", "actor", "genre"} <= names
        assert {"post", "delete"} <= set(paths["/api/downloads/{avid}"])
        assert paths["/api/downloads/{avid}"]["post"]["parameters"][0] == {
            "name": "avid", "in": "path", "required": True, "schema": {"type": "string"}}


def test_docs_page_uses_local_assets(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as c:
        page = c.get("/docs")
        assert page.status_code == 200
        srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert srcs and all(s.startswith("/docs/static/") for s in srcs), srcs
        assert "http" not in " ".join(srcs)
        for s in srcs:
            res = c.get(s)
            assert res.status_code == 200 and len(res.content) > 1000, s
