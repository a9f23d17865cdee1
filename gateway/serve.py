"""Run the gateway under uvicorn (uvloop + httptools: the plain asyncio loop added ~40 ms
to every response here because TCP_NODELAY was not set)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from pipeline import logs
from pipeline.config import Config

log = logging.getLogger("nassav.gateway")


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def serve(config: Config, redis_url: str) -> int:
    logs.setup("gateway", data_dir=config.data_path, level=config.log_level, json_lines=config.log_json)
    app = create_app(config, redis_url)
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_config=None, access_log=False,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http="httptools" if _has("httptools") else "h11",
        ws="websockets-sansio", lifespan="on", timeout_graceful_shutdown=5))
    log.info("gateway listening on http://%s:%d", config.host, config.port)
    server.run()
    return 0
