"""What a worker process needs to run stages, built once from config (no globals)."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Mapping

import redis

from pipeline import cookies as cookie_store
from pipeline.config import Config
from pipeline.download_gate import DownloadGate
from pipeline.events import Events
from pipeline.http import Pacer, RedisPacer
from pipeline.jobs import Jobs
from pipeline.redis_client import connect
from pipeline.store import ResourceStore


@dataclass
class Context:
    config: Config
    redis: redis.Redis
    events: Events
    jobs: Jobs
    store: ResourceStore
    pacer: Pacer = field(default_factory=Pacer)
    # Set when the worker is stopping: a running download stops and its stage is re-sent.
    shutdown: threading.Event = field(default_factory=threading.Event)
    # host:pid, stamped on stage events so a run can tell which worker did what.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # The free-space guard and the schedule (built from config.download when not given);
    # tests set its disk threshold and clock.
    gate: DownloadGate | None = None

    def __post_init__(self) -> None:
        if self.gate is None:
            self.gate = DownloadGate.from_config(self.config.download, self.config.data_path)

    @classmethod
    def create(cls, config: Config, redis_url: str) -> "Context":
        # A timeout so a hung Redis cannot block a stage forever (none of our calls block).
        client = connect(redis_url, health_check_interval=30, socket_timeout=30, socket_connect_timeout=5)
        return cls(config=config, redis=client, pacer=RedisPacer(client),
                   events=Events(client, maxlen=config.events_maxlen),
                   jobs=Jobs(client, maxlen=config.events_maxlen),
                   store=ResourceStore(config.data_path, file_mode=config.library.file_mode_bits))

    def cookies(self) -> Mapping[str, Mapping[str, str]]:
        return cookie_store.load(self.config.data_path)

    # Adapters are built per call: they hold curl handles, which are not thread-safe,
    # and cookies may have been changed through the API since the last job.
    def video_sources(self):
        from sources.registry import build_sources
        return build_sources(self.config, pacer=self.pacer, cookies=self.cookies())

    def catalogues(self):
        from sources.registry import build_catalogues
        return build_catalogues(self.config, pacer=self.pacer)
