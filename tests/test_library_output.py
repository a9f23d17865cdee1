"""Library output that media servers read, made by the real stages against the fixture site."""

import json
import xml.etree.ElementTree as ET

from PIL import Image, ImageChops, ImageStat

from actors.registry import CHAIN
from actors.context import Context
from pipeline.avid import parse
from pipeline.config import load
from sources.javbus import GENRE_BLACKLIST
from tools.fixture_site import FixtureSite


def test_metadata_job_writes_a_jellyfin_ready_folder(tmp_path, r, redis_url):
    with FixtureSite.start(titles=("DEMO-001",)) as site:
        cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                     extra={"library": {"extrafanart": True, "actor_photos": True}}), {})
        ctx = Context.create(cfg, redis_url)
        avid = parse("DEMO-001")
        job = ctx.jobs.submit(avid.code, kind="metadata")
        # a metadata job ends after cover
        assert CHAIN.run_inline(ctx, avid, job.job_id, "metadata") == ["resolve", "scrape", "cover"]
        title = site.title("DEMO-001")
        ctx.redis.close()

    d = tmp_path / "data" / "DEMO-001"
    meta = json.loads((d / "DEMO-001.json").read_text())
    assert meta["schema"] == 1 and meta["avid"] == "DEMO-001"
    assert meta["source"]["name"] == "missav" and meta["catalogue"]["name"] == "javbus"

    cover = Image.open(d / "DEMO-001.jpg")
    poster = Image.open(d / "DEMO-001-poster.jpg")
    assert poster.height == cover.height
    assert poster.width == round(cover.height * 565 / 800)
    # The poster is the right-hand crop: its pixels equal the cover's right edge.
    right = cover.crop((cover.width - poster.width, 0, cover.width, cover.height))
    left = cover.crop((0, 0, poster.width, cover.height))
    assert _diff(poster, right) < 8 < _diff(poster, left)
    assert (d / "DEMO-001-fanart.jpg").exists() and (d / "DEMO-001-thumb.jpg").exists()
    assert len(list((d / "extrafanart").glob("fanart*.jpg"))) == len(title.samples)

    root = ET.parse(d / "DEMO-001.nfo").getroot()  # well-formed, or this raises
    assert root.tag == "movie"
    assert root.findtext("uniqueid") == "DEMO-001"
    assert title.title in root.findtext("title")
    assert root.findtext("premiered") == title.release_date
    assert root.findtext("year") == title.release_date[:4]
    assert root.findtext("runtime") == str(title.runtime_min)
    assert root.findtext("studio") == title.studio
    assert root.findtext("director") == title.director
    assert root.findtext("set/name") == title.series
    genres = [g.text for g in root.findall("genre")]
    assert genres and not set(genres) & set(GENRE_BLACKLIST)
    assert set(genres) <= set(title.genres)
    assert root.findtext("art/poster") == "DEMO-001-poster.jpg"
    actors = root.findall("actor")
    assert [a.findtext("name") for a in actors] == [n for n, _ in title.actors]
    with_photo = [a for a in actors if a.findtext("thumb")]
    assert with_photo and all(a.findtext("thumb").startswith(".actors/") for a in with_photo)
    for a in with_photo:
        assert (d / a.findtext("thumb")).exists()
    # The placeholder avatar is not a photo: that actor has none.
    assert len(with_photo) == len([u for _, u in title.actors if "nowprinting" not in u])


def _diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute grey-level difference (JPEG noise stays well under 8)."""
    return ImageStat.Stat(ImageChops.difference(a.convert("L"), b.convert("L"))).mean[0]
