"""The OpenAPI document, built from the app's own routes (so no route can be missing from it),
and the ``/docs`` page, whose Swagger UI assets come from the installed ``swagger-ui-bundle``
package: no CDN, users run this offline."""

from __future__ import annotations

import inspect
import re
from typing import Any, Iterable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

DOCS_ASSETS = "/docs/static"

_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterable[tuple[str, str, Any, BaseRoute]]:
    """``(path, method, endpoint, route)`` for every route, mounts included."""
    for r in routes:
        if isinstance(r, Route):
            if not r.include_in_schema:
                continue
            for m in sorted(r.methods or ()):
                if m != "HEAD":
                    yield prefix + r.path, m, r.endpoint, r
        elif isinstance(r, WebSocketRoute):
            yield prefix + r.path, "WEBSOCKET", r.endpoint, r
        elif isinstance(r, Mount):
            sub = getattr(r, "routes", None) or []
            if sub:
                yield from walk(sub, prefix + r.path)
            else:
                yield prefix + r.path, "MOUNT", r.app, r


def _operation(path: str, method: str, endpoint: Any) -> dict[str, Any]:
    doc = inspect.getdoc(endpoint) or ""
    summary, _, description = doc.partition("\n")
    extra = getattr(endpoint, "__openapi__", {})
    op: dict[str, Any] = {"summary": summary.strip() or path, "operationId": f"{method.lower()} {path}"}
    if description.strip():
        op["description"] = description.strip()
    params = []
    for name, conv in _PARAM.findall(path):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "integer" if conv == "int" else "string"}})
    for name, text in extra.get("query", {}).items():
        params.append({"name": name, "in": "query", "required": False, "description": text,
                       "schema": {"type": "string"}})
    if params:
        op["parameters"] = params
    if extra.get("body"):
        op["requestBody"] = {"content": {"application/json": {"schema": {
            "type": "object", "properties": {k: {"description": v} for k, v in extra["body"].items()}}}}}
    responses = {str(code): {"description": text} for code, text in extra.get("responses", {}).items()}
    responses.setdefault("200", {"description": "the envelope {code, message, data}"})
    responses.setdefault("400", {"description": "bad input; the message says what is accepted"})
    op["responses"] = responses
    return op


def schema(routes: Iterable[BaseRoute], *, title: str = "nassav", version: str = "") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, _ in walk(routes):
        clean = _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        item = paths.setdefault(clean, {})
        if method == "WEBSOCKET":
            op = _operation(clean, "get", endpoint)
            op["summary"] = "WebSocket: " + op["summary"]
            op["responses"] = {"101": {"description": "switching protocols"}}
            item["get"] = op
        elif method == "MOUNT":
            item["get"] = {"summary": f"{clean}: an application mounted here", "operationId": f"get {clean}",
                           "responses": {"200": {"description": "HTML"}}}
        else:
            item[method.lower()] = _operation(clean, method, endpoint)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "Every answer is {code, message, data} with code equal to the HTTP status; "
                                "lists add pagination {total, page, page_size, pages}. Everything is also "
                                "served under /nassav/api."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


async def openapi_json(request: Request) -> JSONResponse:
    """This document."""
    doc = request.app.state.openapi
    if doc is None:
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("nassav")
        except PackageNotFoundError:
            v = "0"
        doc = request.app.state.openapi = schema(request.app.routes, version=v)
    return JSONResponse(doc)


def assets_dir() -> str | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return swagger_ui_bundle.swagger_ui_path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nassav API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
// A token given as ?token= (the page was opened with it) is sent as a Bearer header.
const token = new URLSearchParams(location.search).get("token");
SwaggerUIBundle({{
  url: "{spec}", dom_id: "#ui", deepLinking: true,
  requestInterceptor: (req) => {{ if (token) req.headers["Authorization"] = "Bearer " + token; return req; }},
}});
</script></body></html>
"""


async def docs(request: Request) -> Response:
    """Interactive API documentation (Swagger UI, served from the installed package)."""
    if assets_dir() is None:
        return HTMLResponse("<!doctype html><title>nassav API</title><p>The interactive page needs the "
                            "<code>swagger-ui-bundle</code> package; the schema is at "
                            "<a href=\"/openapi.json\">/openapi.json</a>.</p>")
    return HTMLResponse(_PAGE.format(assets=DOCS_ASSETS, spec="/openapi.json"))
