"""Helpers for the API tests: a gateway on the real Redis in-process, and library folders on disk."""

from __future__ import annotations

import io
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from PIL import Image
from starlette.testclient import TestClient

from gateway.app import create_app
from pipeline.avid import parse
from pipeline.config import load
from pipeline.redis_client import connect
from pipeline.store import ResourceStore
from tests.conftest import wait_for


def jpeg(width: int = 1600, height: int = 1076, color=(180, 40, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def put_resource(data_dir: Path, code: str, *, title: str = "", actors=("Aoi Test",), genres=("Drama",),
                 source: str = "missav", video: bool = False, cover: bool = True, created_at: float | None = None,
                 user: dict | None = None, **extra: Any) -> dict[str, Any]:
    """A library folder as the stages leave it: metadata JSON, cover, optionally a video."""
    store = ResourceStore(data_dir)
    avid = parse(code)
    now = time.time() if created_at is None else created_at
    meta = {"avid": avid.code, "schema": 1, "title": title or f"Title of {avid.code}",
            "original_title": title or f"Original {avid.code}", "source_title": f"{avid.code} source title",
            "release_date": "2024-01-02", "runtime_min": 120, "studio": "Studio", "genres": list(genres),
            "actors": [{"name": a, "avatar_url": f"http://127.0.0.1:9/{a}.jpg"} for a in actors],
            "samples": [], "source": {"name": source, "page_url": f"http://127.0.0.1:9/{avid.code}",
                                      "title": f"{avid.code} source title"},
            "created_at": now, "updated_at": now}
    meta.update(extra)
    if user is not None:
        meta["user"] = user
    store.dir(avid).mkdir(parents=True, exist_ok=True)
    store.meta(avid).write_text(json.dumps(meta), encoding="utf-8")
    if cover:
        store.cover(avid).write_bytes(jpeg())
    if video:
        store.video(avid).write_bytes(b"\x00" * 1024)
        meta["video"] = {"file": store.video(avid).name, "bytes": 1024, "duration_s": 12.0,
                         "completed_at": now + 5}
        store.meta(avid).write_text(json.dumps(meta), encoding="utf-8")
    return meta


def config(data_dir: Path, redis_url: str, **kw: Any):
    # TestClient sends ``Host: testserver``: allowed here as a user would allow a name.
    kw.setdefault("allowed_hosts", ["testserver"])
    return load(None, {}, data_dir=str(data_dir), redis_url=redis_url, **kw)


@contextmanager
def gateway(data_dir: Path, redis_url: str, **kw: Any) -> Iterator[TestClient]:
    """``create_app`` on the real Redis, lifespan running, index projection ready."""
    app = create_app(config(data_dir, redis_url, **kw), redis_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        st = app.state.nassav
        wait_for(lambda: st.projection is not None and st.projection.ready.is_set(), 10, 0.02,
                 "the index projection")
        client.st = st  # type: ignore[attr-defined]
        yield client


def settle(client: TestClient, timeout_s: float = 5) -> None:
    """Wait until the projection has acknowledged every event in the stream."""
    st = client.st  # type: ignore[attr-defined]
    c = connect(st.redis_url)
    try:
        def done() -> bool:
            for g in c.xinfo_groups("nassav:events"):
                if g["name"] == "nassav-index":
                    return g["pending"] == 0 and (g.get("lag") in (0, None)) and \
                        g["last-delivered-id"] == c.xinfo_stream("nassav:events")["last-generated-id"]
            return False
        wait_for(done, timeout_s, 0.02, "the projection to catch up")
    finally:
        c.close()
