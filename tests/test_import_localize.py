"""An imported title's metadata is localized like a downloaded one's: the translator (a real
OpenAI-compatible HTTP server on loopback) fills ``translated_title`` and the NFO follows
``translation.nfo_title``."""

from __future__ import annotations

import pytest

from actors.context import Context
from pipeline.avid import parse
from pipeline.config import load
from tests.fake_openai import fake_openai
from tools.fixture_site import FixtureSite
from tools.import_collection import tiny_videos
from actors.importing import run_import


@pytest.mark.parametrize("nfo_title", ["translated", "original"])
def test_an_imported_title_is_translated_and_its_nfo_follows_nfo_title(tmp_path, r, redis_url, nfo_title):
    root = tmp_path / "old"
    root.mkdir()
    (root / "DEMO-001.mp4").write_bytes(tiny_videos()[0].read_bytes())
    site = FixtureSite.start(titles=("DEMO-001",))
    with fake_openai() as translator:
        extra = {"translation": {"url": translator.url, "model": "m", "fields": ["title"],
                                 "nfo_title": nfo_title}}
        ctx = Context.create(load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data",
                                                    redis_url=redis_url, extra=extra), {}), redis_url)
        try:
            plan = run_import(ctx, "imp-localize", str(root), "copy", False)
            assert plan.counts()["place"] == 1
            avid = parse("DEMO-001")
            meta = ctx.store.read_meta(avid)
            assert meta["translated_title"] == f"译 {meta['original_title'] or meta['title']}"
            nfo = ctx.store.nfo(avid).read_text()
            shown = nfo.split("<title>", 1)[1].split("</title>", 1)[0]
            assert ("译 " in shown) == (nfo_title == "translated"), shown
        finally:
            ctx.redis.close()
            site.stop()
