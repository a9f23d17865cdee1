"""Subscriptions: validation, listing pages, checks and the per-subscription sweep.

Real parts: the fixture site serves the JavBus-layout listings, Redis is the tests' real one,
jobs are submitted through the real submit script and their first stage is sent as a real
Dramatiq message on the Redis broker.
"""

from __future__ import annotations

import threading
import time

import pytest

from actors import following
from actors.context import Context
from actors.registry import declare
from pipeline.avid import parse
from pipeline.broker import make_broker, pending_job_ids
from pipeline.config import load
from pipeline.errors import LayoutChanged, SourceBlocked, SourceNotFound
from pipeline.events import Events
from pipeline.jobs import Jobs
from pipeline.subscription_check import SUBSCRIPTION_CHECKED, SUBSCRIPTION_FOUND
from pipeline.subscriptions import (DUE, Filters, SubscriptionInvalid, Subscriptions, parse_request,
                                    subscription_id)
from sources.listing import CatalogueListing, listing_path, parse_listing
from tools.fixture_site import FixtureSite
from tools.fixture_site.sites._javbus_layout import listing_id, listing_tags, listing_titles

MIRRORS = ("javbus", "busdmm", "dmmsee")


@pytest.fixture(scope="module")
def fx():
    avids = [f"SUBA-{i:03d}" for i in range(1, 66)] + [f"SUBB-{i:03d}" for i in range(1, 13)]
    with FixtureSite.start(titles=avids, stream_kind="clear", duration_s=4, segment_s=2) as site:
        yield site


@pytest.fixture
def world(fx, r, redis_url, tmp_path):
    """A worker's context on the fixture site, and the Dramatiq actors that start jobs."""
    fx.reset()
    cfg = load(fx.write_config(tmp_path / "nassav.yaml", data_dir=tmp_path / "data", redis_url=redis_url), {})
    ctx = Context.create(cfg, redis_url)
    broker = make_broker(redis_url, cfg.workers)
    actors = declare(broker, cfg)
    yield ctx, actors
    broker.close()
    ctx.redis.close()


def expected(fx, kind, key):
    return [t.avid for t in listing_titles(fx.titles, kind, key)]


def follow(r, **body):
    sub = parse_request({"kind": "search", "id_or_query": "SUBA", **body})
    assert Subscriptions(r).add(sub)
    return sub


def events_of(r, type_):
    return [e for e in Events(r).after("0") if e.type == type_]


# -- validation --------------------------------------------------------------------------

def test_a_request_becomes_a_subscription_with_a_stable_id():
    sub = parse_request({"kind": "actress", "id_or_query": " okq ", "action": "download", "backfill": 5,
                         "filters": {"since": "2024-01-01", "skip_genres": ["旅行"], "editions": ["c", "regular"],
                                     "title_regex": "Story"}})
    assert (sub.kind, sub.key, sub.action, sub.backfill) == ("actress", "okq", "download", 5)
    assert sub.filters == Filters("2024-01-01", ("旅行",), ("C", "regular"), "Story")
    assert sub.id == subscription_id("actress", "OKQ") != subscription_id("maker", "okq")
    assert parse_request({"kind": "search", "id_or_query": "x"}).action == "metadata"


@pytest.mark.parametrize("body, field", [
    ({"kind": "genre", "id_or_query": "x"}, "kind"),
    ({"kind": "actress", "id_or_query": ""}, "id_or_query"),
    ({"kind": "actress", "id_or_query": "a/b"}, "id_or_query"),
    ({"kind": "search", "id_or_query": ".."}, "id_or_query"),
    ({"kind": "actress", "id_or_query": "x", "action": "both"}, "action"),
    ({"kind": "actress", "id_or_query": "x", "backfill": -1}, "backfill"),
    ({"kind": "actress", "id_or_query": "x", "backfill": True}, "backfill"),
    ({"kind": "actress", "id_or_query": "x", "interval_s": 5}, "interval_s"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"since": "2024-13-01"}}, "filters.since"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"since": "yesterday"}}, "filters.since"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"editions": ["HD"]}}, "filters.editions"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"title_regex": "("}}, "filters.title_regex"),
    ({"kind": "actress", "id_or_query": "x", "filters": {"genre": []}}, "filters.genre"),
    ({"kind": "actress", "id_or_query": "x", "colour": "red"}, "colour"),
])
def test_a_bad_request_names_the_field_and_the_accepted_form(body, field):
    with pytest.raises(SubscriptionInvalid) as e:
        parse_request(body)
    assert e.value.field == field
    assert str(e.value).startswith(f"{field} must be")


def test_filters_say_why_a_title_is_refused():
    f = Filters(since="2024-01-01", editions=("C",), title_regex="^Keep")
    ok = dict(title="Keep me", release_date="2024-05-01", editions=frozenset({"regular", "C"}))
    assert f.refusal(**ok) == ""
    assert "before 2024-01-01" in f.refusal(**{**ok, "release_date": "2023-12-31"})
    assert "none of C" in f.refusal(**{**ok, "editions": frozenset({"regular"})})
    assert f.refusal(**{**ok, "title": "Drop me"}) == "title does not match"
    assert Filters(skip_genres=("旅行",)).skipped_genre(["劇情", "旅行"]) == "genre 旅行"


# -- listing pages -----------------------------------------------------------------------

def listing(fx, name="javbus"):
    cfg = load(None, {}, catalogues={name: {"base_url": fx.site_url(name), "min_interval_s": 0}},
               http={"allow_private_urls": True, "retries": 0})
    return CatalogueListing(cfg.catalogues[name], cfg.http, name=name)


def test_listing_pages_hold_the_titles_newest_first_with_pagination(fx):
    want = expected(fx, "search", "SUBA")
    assert len(want) == 65
    site = listing(fx)
    pages = [site.listing("search", "SUBA", n) for n in (1, 2, 3)]
    assert [i.avid for p in pages for i in p.items] == want
    assert [p.has_next for p in pages] == [True, True, False]
    first = pages[0].items[0]
    t = fx.title(first.avid)
    assert (first.title, first.release_date) == (t.title, t.release_date)
    assert ("C" in first.editions) == ("字幕" in listing_tags(t))
    with pytest.raises(SourceNotFound):
        site.listing("search", "SUBA", 4)  # past the last page: the site's 404
    with pytest.raises(SourceNotFound):
        site.listing("search", "NOPE")


@pytest.mark.parametrize("kind, field", [("actress", None), ("maker", "studio"), ("label", "label"),
                                         ("series", "series"), ("director", "director")])
def test_each_kind_lists_the_titles_the_title_pages_link_it_from(fx, kind, field):
    t = fx.title("SUBB-001")
    name = t.actors[0][0] if field is None else getattr(t, field)
    got = [i.avid for i in listing(fx).listing(kind, listing_id(name)).items]
    assert "SUBB-001" in got
    assert got == expected(fx, listing_path(kind, "x").split("/")[1], listing_id(name))[:30]


def test_listing_outcomes_are_typed_like_title_pages(fx):
    site = listing(fx)
    fx.set_scenario("javbus", "challenge_403", avid=listing_path("search", "SUBA", 2))
    site.listing("search", "SUBA", 1)
    with pytest.raises(SourceBlocked):
        site.listing("search", "SUBA", 2)
    fx.set_scenario("javbus", "layout_changed")
    with pytest.raises(LayoutChanged):
        site.listing("search", "SUBA", 1)
    fx.reset()
    with pytest.raises(LayoutChanged):
        parse_listing("<html><body><p>nothing here</p></body></html>", url="u", source="javbus")


# -- checks ------------------------------------------------------------------------------

def test_first_check_is_capped_by_backfill_then_only_a_new_release_is_queued(fx, world, r):
    ctx, actors = world
    fx.add_title("SUBN-001")
    fx.add_title("SUBN-002")
    fx.add_title("SUBN-003")
    sub = parse_request({"kind": "search", "id_or_query": "SUBN", "backfill": 2})
    subs = Subscriptions(r)
    assert subs.add(sub)
    rec = following.check_one(ctx, subs, sub, actors.start)
    newest_two = expected(fx, "search", "SUBN")[:2]
    assert rec.first and list(rec.queued) == newest_two
    assert rec.stopped == "first check: backfill of 2 reached" and rec.pages == 1 and rec.requests == 1
    jobs = Jobs(r)
    for avid, job_id in rec.queued.items():
        job = jobs.get(job_id)
        assert (job["avid"], job["kind"], job["subscription"]) == (avid, "metadata", sub.id)
    assert set(rec.queued.values()) <= pending_job_ids(r)  # the first stage's message is queued

    fx.add_title("SUBN-004", release_date="2031-01-01")  # a new release between two checks
    rec2 = following.check_one(ctx, subs, sub, actors.start)
    assert not rec2.first and list(rec2.queued) == ["SUBN-004"]
    assert rec2.stopped == f"met {newest_two[0]}, seen before" and rec2.pages == 1

    status = subs.status(sub.id)
    assert status["checks_done"] == 2 and status["newest"] == "SUBN-004"
    assert [c["queued"] for c in status["checks"]] == [rec2.queued, rec.queued]
    found = events_of(r, SUBSCRIPTION_FOUND)
    assert [e.avid for e in found] == [*newest_two, "SUBN-004"]
    assert found[-1].data["subscription"] == sub.id and found[-1].job_id == rec2.queued["SUBN-004"]
    assert found[-1].data["name"] == "search SUBN"  # what a notification says found it
    checked = events_of(r, SUBSCRIPTION_CHECKED)
    assert [e.data["queued"] for e in checked] == [2, 1]


def test_a_check_reads_every_page_until_the_end(fx, world, r):
    ctx, actors = world
    sub = follow(r, backfill=1000, action="download")
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    assert list(rec.queued) == expected(fx, "search", "SUBA")
    assert rec.pages == 3 and rec.requests == 3 and rec.stopped == "end of the listing"
    assert {Jobs(r).get(j)["kind"] for j in rec.queued.values()} == {"download"}


def test_the_library_and_jobs_in_progress_are_respected(fx, world, r):
    ctx, actors = world
    order = expected(fx, "search", "SUBB")
    have, busy = parse(order[0]), order[1]
    ctx.store.dir(have).mkdir(parents=True)
    ctx.store.meta(have).write_text("{}")
    ctx.store.cover(have).write_bytes(b"\xff\xd8")
    held = Jobs(r).submit(busy, "download")
    sub = parse_request({"kind": "search", "id_or_query": "SUBB", "backfill": 100})
    Subscriptions(r).add(sub)
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    assert rec.skipped[have.code] == f"{have.code} is already in the library"
    assert "already has a job" in rec.skipped[busy]
    assert list(rec.queued) == order[2:]
    assert Jobs(r).live_job(busy) == held.job_id


def test_filters_decide_what_is_queued(fx, world, r):
    ctx, actors = world
    titles = listing_titles(fx.titles, "search", "SUBB")
    since = sorted(t.release_date for t in titles)[len(titles) // 2]
    skip = titles[0].genres[0]
    sub = parse_request({"kind": "search", "id_or_query": "SUBB", "backfill": 100,
                         "filters": {"since": since, "skip_genres": [skip]}})
    Subscriptions(r).add(sub)
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    want = [t.avid for t in titles if t.release_date >= since and skip not in t.genres]
    assert want and list(rec.queued) == want
    assert rec.skipped[titles[0].avid] == f"genre {skip}"
    assert set(rec.new) == {t.avid for t in titles}
    # one listing page, plus one title page per title past the date filter (for its genres)
    assert rec.requests == 1 + sum(t.release_date >= since for t in titles)

    # The same search written otherwise is another subscription (another id).
    subs_c = parse_request({"kind": "search", "id_or_query": "SUBB-0", "backfill": 100, "action": "download",
                            "filters": {"editions": ["C"], "title_regex": "Story"}})
    assert Subscriptions(r).add(subs_c)
    rec_c = following.check_one(ctx, Subscriptions(r), subs_c, actors.start)
    with_subs = [t.avid for t in titles if "字幕" in listing_tags(t)]
    # A title the first subscription queued holds its claim: not queued twice.
    assert with_subs and list(rec_c.queued) == [a for a in with_subs if a not in rec.queued]
    assert all("already has a job" in rec_c.skipped[a] for a in with_subs if a in rec.queued)


def test_a_blocked_page_is_recorded_and_the_next_check_reads_past_it(fx, world, r):
    ctx, actors = world
    sub = follow(r, backfill=1000)
    subs = Subscriptions(r)
    for m in MIRRORS:
        fx.set_scenario(m, "challenge_403", avid=listing_path("search", "SUBA", 2))
    rec = following.check_one(ctx, subs, sub, actors.start)
    want = expected(fx, "search", "SUBA")
    assert list(rec.queued) == want[:30]
    assert rec.stopped == "blocked on page 2" and "blocked" in rec.errors[0]
    assert rec.requests == 1 + len(MIRRORS)  # page 1, then page 2 asked of every mirror
    fx.reset()
    rec2 = following.check_one(ctx, subs, sub, actors.start)
    assert list(rec2.queued) == want[30:] and rec2.errors == []
    rec3 = following.check_one(ctx, subs, sub, actors.start)
    assert rec3.queued == {} and rec3.pages == 1  # back to stopping at the first seen title


def test_a_blocked_mirror_hands_over_to_the_next(fx, world, r):
    ctx, actors = world
    sub = follow(r, backfill=3)
    fx.set_scenario("javbus", "blocked_451")
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    assert list(rec.queued) == expected(fx, "search", "SUBA")[:3] and rec.errors == []
    assert rec.requests == 2
    assert fx.stats()["requests"].get("busdmm", 0) >= 1


def test_an_unknown_listing_is_an_error_in_the_record(fx, world, r):
    ctx, actors = world
    sub = parse_request({"kind": "actress", "id_or_query": "nobody"})
    Subscriptions(r).add(sub)
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    assert rec.stopped == "listing not found" and "not found" in rec.errors[0] and rec.queued == {}


# -- racing workers and the schedule ----------------------------------------------------

def _race(n, fn):
    barrier = threading.Barrier(n)
    out, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait()
            out[i] = fn(i)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def test_two_workers_racing_on_one_subscription_queue_each_title_once(fx, world, r, redis_url):
    ctx, actors = world
    other = Context.create(ctx.config, redis_url)  # a second worker: its own Redis client
    try:
        sub = follow(r, backfill=1000)
        # Both check at once, bypassing the lock: the seen-set gate alone must hold.
        recs = _race(2, lambda i: following.check_one((ctx, other)[i], Subscriptions((ctx, other)[i].redis),
                                                      sub, actors.start))
        queued = [a for rec in recs for a in rec.queued]
        assert sorted(queued) == sorted(expected(fx, "search", "SUBA"))
        assert len(Jobs(r).active()) == 65
        assert len(events_of(r, SUBSCRIPTION_FOUND)) == 65
    finally:
        other.redis.close()


def test_the_sweep_checks_a_due_subscription_on_one_worker_and_reschedules_it(fx, world, r, redis_url):
    ctx, actors = world
    other = Context.create(ctx.config, redis_url)
    try:
        sub = follow(r, backfill=3, interval_s=600)
        recs = _race(2, lambda i: following.tick((ctx, other)[i], actors.start))
        assert sorted(len(x) for x in recs) == [0, 1]  # one worker checked, the other found it locked/not due
        assert Subscriptions(r).status(sub.id)["checks_done"] == 1
        due = r.zscore(DUE, sub.id)
        assert 600 * 0.9 - 5 <= due - time.time() <= 600 * 1.1  # ± jitter (0.1 by default)
        assert following.tick(ctx, actors.start) == []  # not due again yet
        assert Subscriptions(r).check_now(sub.id)
        assert len(following.tick(ctx, actors.start)) == 1
    finally:
        other.redis.close()


def test_unfollowing_forgets_everything(fx, world, r):
    ctx, actors = world
    sub = follow(r, backfill=1)
    following.check_one(ctx, Subscriptions(r), sub, actors.start)
    subs = Subscriptions(r)
    assert subs.remove(sub.id)
    assert subs.get(sub.id) is None and r.zscore(DUE, sub.id) is None
    assert not [k for k in r.scan_iter(match=f"nassav:sub:{sub.id}:*")]
    assert not subs.remove(sub.id)
    newest = expected(fx, "search", "SUBA")[0]
    subs.mark_seen(sub.id, newest)  # what a check still running at the unfollow may leave
    assert subs.add(sub)  # followed again: starts afresh
    rec = following.check_one(ctx, subs, sub, actors.start)
    assert rec.first and rec.new[:1] == [newest]


def test_listing_requests_take_the_catalogue_pacing_shared_by_every_worker(fx, r, redis_url, tmp_path):
    """A paced catalogue's listing pages take their slots from the one Redis pacer (the key every
    worker's requests to that site share), not from a per-process timer."""
    cfg = load(fx.write_config(tmp_path / "p.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                               extra={"catalogues": {"javbus": {"min_interval_s": 0.05}}}), {})
    ctx = Context.create(cfg, redis_url)
    broker = make_broker(redis_url, cfg.workers)
    try:
        assert not r.exists("nassav:pace:javbus")
        sub = follow(r, backfill=1000)
        rec = following.check_one(ctx, Subscriptions(r), sub, declare(broker, cfg).start)
        assert rec.pages == 3
        assert r.exists("nassav:pace:javbus")  # the shared slot the next request of any worker waits for
    finally:
        broker.close()
        ctx.redis.close()


def test_a_blocklisted_title_is_skipped_and_not_asked_again(fx, world, r):
    from pipeline import blocklist

    ctx, actors = world
    order = expected(fx, "search", "SUBB")
    blocklist.Blocklist(r).add_avid(order[0], "not wanted")
    sub = parse_request({"kind": "search", "id_or_query": "SUBB", "backfill": 100})
    Subscriptions(r).add(sub)
    rec = following.check_one(ctx, Subscriptions(r), sub, actors.start)
    assert "blocklist" in rec.skipped[order[0]] and rec.errors == []
    assert list(rec.queued) == order[1:]
    assert Jobs(r).live_job(order[0]) is None
