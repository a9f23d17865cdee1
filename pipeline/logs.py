"""Structured, rotated logs with avid / job / stage on every line and no secrets.

``setup(component, data_dir=..., level=..., json_lines=...)`` configures the root logger of a
process once: stderr plus ``<data_dir>/logs/<component>.log`` rotated at 10 MB × 5.
``context(avid=..., job=..., stage=...)`` binds fields for the lines logged inside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterator

# Owner-only: secrets are redacted, but the lines still name every AVID, source page and
# playlist URL (signed CDN tokens included); a media server has no use for them.
LOG_DIR_MODE = 0o700

_ctx: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("nassav_log_ctx", default={})

# Values after these words are secrets: cookies, tokens, auth headers.
_SECRET = re.compile(r"(?i)(cookie|token|authorization|bearer|password|secret|cf_clearance)"
                     r"(\s*[=:]\s*|\"\s*:\s*\"|\s+)((?:bearer\s+)?[^\s,;\"'&]{4})[^\s,;\"'&]*")


def redact(text: str) -> str:
    """Keep a 4-character prefix of anything that looks like a secret value."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}…", text)


@contextlib.contextmanager
def context(**fields: str) -> Iterator[None]:
    merged = dict(_ctx.get())
    merged.update({k: v for k, v in fields.items() if v})
    token = _ctx.set(merged)
    try:
        yield
    finally:
        _ctx.reset(token)


class _ContextFilter(logging.Filter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _ctx.get()
        for k in ("avid", "job", "stage"):
            if not hasattr(record, k):
                setattr(record, k, ctx.get(k, ""))
        record.component = self.component
        return True


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        fields = " ".join(f"{k}={getattr(record, k)}" for k in ("avid", "job", "stage")
                          if getattr(record, k, ""))
        msg = redact(record.getMessage())
        line = f"{ts} {record.levelname:<7} {record.component} {record.name}: {msg}"
        if fields:
            line += f"  [{fields}]"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {"ts": round(record.created, 3), "level": record.levelname,
               "component": record.component, "logger": record.name,
               "msg": redact(record.getMessage())}
        for k in ("avid", "job", "stage"):
            if getattr(record, k, ""):
                obj[k] = getattr(record, k)
        if record.exc_info:
            obj["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(obj, ensure_ascii=False)


def setup(component: str, *, data_dir: Path | None = None, level: str = "INFO",
          json_lines: bool = False, max_bytes: int = 10 * 1024 * 1024, backups: int = 5) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = JsonFormatter() if json_lines else PlainFormatter()
    flt = _ContextFilter(component)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if data_dir is not None:
        logdir = Path(data_dir) / "logs"
        logdir.mkdir(parents=True, exist_ok=True, mode=LOG_DIR_MODE)
        os.chmod(logdir, LOG_DIR_MODE)  # also a folder an earlier version made 0755
        handlers.append(logging.handlers.RotatingFileHandler(
            logdir / f"{component}.log", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(flt)
        root.addHandler(h)
    root.setLevel(level.upper())
    # Third-party chatter that would drown the events users care about.
    for noisy in ("dramatiq.worker", "dramatiq.MessageProxy", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
