"""Run the gateway under uvicorn (uvloop + httptools: the plain asyncio loop added ~40 ms
to every response here because TCP_NODELAY was not set).

:func:`uvicorn_config` is the one place the server's settings are decided; ``serve()`` and the
tests' live gateway (``tests/live_server.py``) both use it, so tests run what users run.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from gateway import header_timeout
from gateway.app import create_app
from gateway.auth import MAX_BODY_BYTES
from pipeline import logs
from pipeline.config import Config

log = logging.getLogger("nassav.gateway")

WS_PROTOCOL = "websockets-sansio"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def uvicorn_config(app: Any, config: Config, *, ws: str = WS_PROTOCOL, graceful_shutdown_s: float = 5,
                   **logging_options: Any) -> uvicorn.Config:
    """uvicorn's settings for ``app`` from nassav's ``config``.

    Slow or hostile clients: request headers must arrive within ``gateway.header_timeout_s``
    (see ``gateway/header_timeout.py``), at most ``gateway.max_connections`` connections are
    served at once, and a WebSocket message over the HTTP body limit closes the connection
    (1009). ``ws`` picks uvicorn's WebSocket implementation (tests try both);
    ``logging_options`` (``log_level``…) only change what uvicorn logs.
    """
    http = "httptools" if _has("httptools") else "h11"
    options: dict[str, Any] = {"log_config": None, "access_log": False, **logging_options}
    return uvicorn.Config(
        app, host=config.host, port=config.port,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http=header_timeout.protocol_class(http, config.gateway.header_timeout_s),
        ws=ws, ws_max_size=MAX_BODY_BYTES, limit_concurrency=config.gateway.max_connections,
        lifespan="on", timeout_graceful_shutdown=graceful_shutdown_s, **options)


def serve(config: Config, redis_url: str) -> int:
    logs.setup("gateway", data_dir=config.data_path, level=config.log_level, json_lines=config.log_json)
    if config.gateway.processes > 1:  # N processes on the port (gateway/multiserve.py)
        from gateway.multiserve import serve_many

        return serve_many(config, redis_url)
    app = create_app(config, redis_url, freeze_gc=True)
    server = uvicorn.Server(uvicorn_config(app, config))
    log.info("gateway listening on http://%s:%d", config.host, config.port)
    server.run()
    return 0
