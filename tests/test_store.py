"""ResourceStore: the paths it hands out, and metadata updates that lose nothing under real
concurrency (worker processes and the gateway's user state writing the same JSON)."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from pipeline.avid import parse
from pipeline.store import ResourceStore, safe_name

AVID = parse("ABC-123")
ROUNDS = 40


def test_paths_are_handed_out_by_the_store(tmp_path):
    store = ResourceStore(tmp_path)
    d = store.dir(AVID)
    assert store.cover_cache(AVID, "small") == tmp_path.resolve() / ".cache" / "covers" / "ABC-123-small.jpg"
    assert store.extrafanart(AVID, 3) == d / "extrafanart" / "fanart3.jpg"
    path, rel = store.actor_photo(AVID, "Mei Sample")
    assert (path, rel) == (d / ".actors" / "Mei_Sample.jpg", ".actors/Mei_Sample.jpg")
    # A name cannot leave the folder.
    path, rel = store.actor_photo(AVID, "../../etc/passwd")
    assert path.parent == d / ".actors" and "/" not in rel.removeprefix(".actors/")
    assert safe_name("") == "actor" and len(safe_name("x" * 200)) == 80


def test_find_actor_photo_and_drop_cover_cache(tmp_path):
    store = ResourceStore(tmp_path)
    assert store.find_actor_photo(AVID, "Mei Sample") is None
    path, _ = store.actor_photo(AVID, "Mei Sample")
    store.write(path, b"jpeg")
    assert store.find_actor_photo(AVID, "Mei Sample") == path
    store.write(store.dir(AVID) / ".actors" / "Rin.png", b"png")
    assert store.find_actor_photo(AVID, "Rin").name == "Rin.png"
    for size in ("small", "large"):
        store.write(store.cover_cache(AVID, size), b"x")
    store.drop_cover_cache(AVID, ("small", "medium", "large"))
    assert not list((tmp_path / ".cache" / "covers").iterdir())


def test_update_user_keeps_updated_at_and_never_creates_a_folder(tmp_path):
    store = ResourceStore(tmp_path)
    assert store.update_user(AVID, {"watched": True}) is False
    assert not store.dir(AVID).exists()
    meta = store.update_meta(AVID, title="t")
    assert store.update_user(AVID, {"watched": True, "is_favorite": False}) is True
    after = store.read_meta(AVID)
    assert after["user"] == {"watched": True, "is_favorite": False}
    assert after["updated_at"] == meta["updated_at"] and after["title"] == "t"


def _worker_updates(root: str, n: int) -> None:
    store = ResourceStore(root)
    for i in range(ROUNDS):
        store.update_meta(AVID, **{f"w{n}_{i}": i})


def _gateway_clicks(root: str) -> None:
    store = ResourceStore(root)
    for i in range(ROUNDS):
        store.update_user(AVID, {"watched": bool(i % 2), "is_favorite": True, "click": i})


@pytest.mark.parametrize("how", ["processes", "threads"])
def test_concurrent_metadata_updates_lose_nothing(tmp_path, how):
    """Three writers of stage fields and one of user state, all at once, on one JSON: every
    field of every writer is there at the end (without the folder lock, most are lost)."""
    store = ResourceStore(tmp_path)
    store.update_meta(AVID, title="start")
    targets = [(_worker_updates, (str(tmp_path), n)) for n in range(3)] + [(_gateway_clicks, (str(tmp_path),))]
    if how == "processes":
        ctx = multiprocessing.get_context("fork")
        runners = [ctx.Process(target=t, args=a) for t, a in targets]
    else:
        runners = [threading.Thread(target=t, args=a) for t, a in targets]
    for p in runners:
        p.start()
    for p in runners:
        p.join(timeout=120)
    if how == "processes":
        assert [p.exitcode for p in runners] == [0] * len(runners)
    meta = store.read_meta(AVID)
    missing = [f"w{n}_{i}" for n in range(3) for i in range(ROUNDS) if f"w{n}_{i}" not in meta]
    assert missing == []
    assert meta["title"] == "start"
    assert meta["user"] == {"watched": True, "is_favorite": True, "click": ROUNDS - 1}
