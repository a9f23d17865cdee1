"""The data a fake site handler receives and returns (see ``sites/__init__.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Title:
    """One fictional title the fixture site knows, with every URL absolute on this server."""

    avid: str
    title: str
    playlist_url: str  # absolute URL of the master playlist on this server
    cover_url: str
    release_date: str  # YYYY-MM-DD
    runtime_min: int
    director: str
    studio: str
    label: str
    series: str
    genres: list[str]  # includes technical tags (高畫質, 單體作品…) that scrapers must drop
    actors: list[tuple[str, str]]  # (full name, avatar URL; may be the nowprinting.gif placeholder)
    samples: list[str]
    uuid: str  # the MissAV-style uuid: the master is also served at /surrit/<uuid>/playlist.m3u8
    # Not in the original brief: a stable numeric id for sites that address videos by
    # number (HohoJ ``/embed?id=``, GGJav ``/main/video?id=``). The server also matches it
    # when it looks for the AVID a ``<site>:<AVID>`` scenario applies to.
    num_id: int = 0


@dataclass
class SiteRequest:
    site: str
    path: str  # path below /site/<name>, starting with "/"
    query: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]  # lower-case header names
    base_url: str  # http://127.0.0.1:PORT/site/<name>
    root_url: str  # http://127.0.0.1:PORT
    scenario: str  # found | not_found | layout_changed
    titles: dict[str, Title]  # upper-case AVID -> Title
    method: str = "GET"
    # Editions besides the regular release this site has pages for: AVID -> ("C", "U"...);
    # each is served from the CDN as its own stream, under /cdn/<AVID>-<edition>/.
    editions: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
