"""Fictional titles: every field derived from the AVID, so runs are reproducible."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid as uuidlib

from tools.fixture_site.types import Title

# A fixed namespace: the same AVID gets the same MissAV-style uuid in every run.
UUID_NAMESPACE = uuidlib.UUID("6f1c2a8e-3d5b-4c7a-9e10-2b4f6d8a0c11")

_FIRST = ("Aoi", "Rin", "Mio", "Yui", "Hana", "Sora", "Emi", "Kana", "Nao", "Saki")
_LAST = ("Fixtureberg", "Testington", "Samplewood", "Mockford", "Stubbington",
         "Placeholder", "Dummyfield", "Examplemoor")
_GENRES = ("劇情", "校園", "戀愛", "喜劇", "旅行", "運動", "懸疑", "溫馨", "職場", "音樂")
# Tags a scraper must drop (FIELD_NOTES §2); at least two appear on every title.
TECH_GENRES = ("高畫質", "單體作品", "FHD", "DMM獨家")
_STUDIOS = ("虛構映像", "測試製作所", "範例工作室")
_LABELS = ("虛構唱片", "樣本發行")
_DIRECTORS = ("範例導演", "測試監督", "虛構太郎")


def uuid_for(avid: str) -> str:
    """The stable uuid under which ``/surrit/<uuid>/playlist.m3u8`` serves this AVID."""
    return str(uuidlib.uuid5(UUID_NAMESPACE, avid.upper()))


def _pick(h: bytes, i: int, seq: tuple[str, ...]) -> str:
    return seq[h[i] % len(seq)]


def make_title(avid: str, root_url: str, *, runtime_min: int, num_id: int) -> Title:
    """A fictional :class:`Title` for ``avid`` whose URLs point at ``root_url``."""
    avid = avid.upper()
    h = hashlib.sha256(avid.encode()).digest()
    release = dt.date(2023, 1, 1) + dt.timedelta(days=h[0] * 3 + h[1] % 3)
    genres = sorted({_pick(h, 2, _GENRES), _pick(h, 3, _GENRES), _pick(h, 4, _GENRES)})
    genres += [TECH_GENRES[h[5] % 2], TECH_GENRES[2 + h[6] % 2]]
    actor_ids = [h[7] % 50, 50 + h[8] % 50]
    actors = [(f"{_pick(h, 9 + k, _FIRST)} {_pick(h, 11 + k, _LAST)}",
               f"{root_url}/img/actor/{n}.jpg") for k, n in enumerate(actor_ids)]
    # One actor without a photo: the scraper must not keep the placeholder as an avatar.
    actors.append((f"{_pick(h, 13, _FIRST)} Nophoto-{_pick(h, 14, _LAST)}",
                   f"{root_url}/img/nowprinting.gif"))
    return Title(
        avid=avid,
        title=f"虛構的測試影片 Fixture Story No.{int.from_bytes(h[15:17], 'big') % 1000}",
        playlist_url=f"{root_url}/cdn/{avid}/master.m3u8",
        cover_url=f"{root_url}/img/{avid}/cover.jpg",
        release_date=release.isoformat(),
        runtime_min=runtime_min,
        director=_pick(h, 17, _DIRECTORS),
        studio=_pick(h, 18, _STUDIOS),
        label=_pick(h, 19, _LABELS),
        series=f"示範系列 {h[20] % 9 + 1}",
        genres=genres,
        actors=actors,
        samples=[f"{root_url}/img/{avid}/sample-{n}.jpg" for n in (1, 2, 3)],
        uuid=uuid_for(avid),
        num_id=num_id,
    )
