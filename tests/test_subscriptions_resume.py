"""A check stopped anywhere loses no title: what it marked seen stays pending until decided.

Real parts as in ``tests/test_subscriptions.py`` (whose fixtures these tests use): the fixture
site's listings, the tests' real Redis, the real submit script and Dramatiq broker. The check
is "killed" by a submit callable that raises ``SystemExit`` (a ``BaseException``: nothing in
the check may catch it, just as nothing runs after a SIGKILL), and once for real: a separate
process running the check is SIGKILLed at the moment it would queue a title.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from actors import following
from pipeline.avid import parse
from pipeline.jobs import Jobs
from pipeline.subscription_check import check
from pipeline.subscriptions import MAX_ATTEMPTS, Subscriptions, parse_request
from pipeline.submit import submit as submit_job
from tests.conftest import stop_group
from tests.test_subscriptions import events_of, expected, follow, fx, world  # noqa: F401 (fixtures)


def run_check(ctx, subs, sub, submit):
    """One check as ``actors.following.check_one`` wires it, with ``submit`` in the path."""
    sites = following.listings(ctx)
    try:
        return check(sub, subs, following.reader(ctx, sub, sites), submit, events=ctx.events,
                     max_pages=ctx.config.subscriptions.max_pages, keep=ctx.config.subscriptions.checks_kept)
    finally:
        for s in sites:
            s.close()


def real_submit(ctx, start):
    return lambda avid, kind, fields: submit_job(ctx.jobs, ctx.store, parse(avid), kind, start, fields)


def killed_at(victim, then, *, after_submit=False):
    """A submit that dies on ``victim`` (before queueing it, or just after)."""
    def submit(avid, kind, fields):
        if avid == victim:
            if after_submit:
                then(avid, kind, fields)
            raise SystemExit(f"killed at {avid}")
        return then(avid, kind, fields)
    return submit


def queued_counts(r):
    return Counter(e.avid for e in events_of(r, "queued"))


ROOT = Path(__file__).resolve().parent.parent

# A worker-like process that checks one subscription and SIGKILLs itself when it is about to
# queue the victim (after marking it seen): no finally, no atexit, its Redis connection just drops.
KILLED_CHECK = """
import os, signal, sys
from actors import following
from actors.context import Context
from actors.registry import declare
from pipeline.avid import parse
from pipeline.broker import make_broker
from pipeline.config import load
from pipeline.subscription_check import check
from pipeline.submit import submit
from pipeline.subscriptions import Subscriptions

config, redis_url, sub_id, victim = sys.argv[1:]
cfg = load(config, {})
ctx = Context.create(cfg, redis_url)
actors = declare(make_broker(redis_url, cfg.workers), cfg)
subs = Subscriptions(ctx.redis)
sub = subs.get(sub_id)

def queue(avid, kind, fields):
    if avid == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    return submit(ctx.jobs, ctx.store, parse(avid), kind, actors.start, fields)

check(sub, subs, following.reader(ctx, sub, following.listings(ctx)), queue, events=ctx.events)
"""


def test_a_check_process_sigkilled_before_queueing_loses_no_title(fx, world, r, redis_url, tmp_path):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = follow(r, backfill=1000)
    want = expected(fx, "search", "SUBA")
    victim = want[35]  # on page 2: the rest of page 2 and page 3 are never read by the killed check
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CHECK, str(tmp_path / "nassav.yaml"), redis_url, sub.id,
                             victim], cwd=ROOT, env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        stop_group(proc)
    assert proc.returncode == -9, out.decode(errors="replace")[-2000:]
    assert set(subs.pending(sub.id)) == {victim} and queued_counts(r) == Counter({a: 1 for a in want[:35]})

    rec = run_check(ctx, subs, sub, real_submit(ctx, actors.start))
    assert rec.resumed == [victim] and set(rec.queued) == set(want[35:])
    assert queued_counts(r) == Counter({a: 1 for a in want})  # every title queued exactly once
    assert subs.pending(sub.id) == {}


@pytest.mark.parametrize("position", [0, 2, 40])  # the newest title, one on page 1, one on page 2
def test_a_check_killed_before_queueing_a_title_leaves_it_to_the_next_check(fx, world, r, position):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = follow(r, backfill=1000)
    want = expected(fx, "search", "SUBA")
    victim = want[position]
    with pytest.raises(SystemExit):
        run_check(ctx, subs, sub, killed_at(victim, real_submit(ctx, actors.start)))
    assert r.sismember(f"nassav:sub:{sub.id}:seen", victim)  # seen: the next check stops at it…
    assert set(subs.pending(sub.id)) == {victim}  # …but it is still pending
    assert subs.status(sub.id)["checks_done"] == 0  # the killed check left no record
    assert Jobs(r).live_job(victim) is None

    rec = run_check(ctx, subs, sub, real_submit(ctx, actors.start))
    assert rec.resumed == [victim] and victim in rec.queued
    # The titles the killed check never reached (older, on its page and the next) are read too.
    assert set(rec.queued) == set(want[position:])
    assert queued_counts(r) == Counter({a: 1 for a in want})  # every title queued exactly once
    assert subs.pending(sub.id) == {}
    rec2 = run_check(ctx, subs, sub, real_submit(ctx, actors.start))
    assert rec2.queued == {} and rec2.resumed == [] and rec2.pages == 1  # back to stopping at once


def test_a_check_killed_after_queueing_a_title_does_not_queue_it_twice(fx, world, r):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = follow(r, backfill=1000)
    want = expected(fx, "search", "SUBA")
    victim = want[1]
    with pytest.raises(SystemExit):
        run_check(ctx, subs, sub, killed_at(victim, real_submit(ctx, actors.start), after_submit=True))
    assert set(subs.pending(sub.id)) == {victim} and Jobs(r).live_job(victim)

    rec = run_check(ctx, subs, sub, real_submit(ctx, actors.start))
    assert rec.resumed == [victim] and victim not in rec.queued
    assert rec.skipped[victim] == f"{victim} already has a job in progress"  # the claim refused it
    assert queued_counts(r) == Counter({a: 1 for a in want})
    assert subs.pending(sub.id) == {}


def failing_for(avids, then):
    """A submit that fails (an ordinary exception, as a broker outage would) for ``avids``."""
    def submit(avid, kind, fields):
        if avid in avids:
            raise RuntimeError("broker down")
        return then(avid, kind, fields)
    return submit


def test_a_title_whose_queueing_fails_stays_pending_for_the_next_check(fx, world, r):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = follow(r, backfill=1000)
    victim = expected(fx, "search", "SUBA")[3]  # not the newest: the next check stops above it
    good = real_submit(ctx, actors.start)
    rec = run_check(ctx, subs, sub, failing_for({victim}, good))
    assert victim not in rec.queued and rec.errors == [f"{victim}: could not queue (RuntimeError: broker down)"]
    assert set(subs.pending(sub.id)) == {victim}
    rec = run_check(ctx, subs, sub, good)
    assert rec.queued.keys() == {victim} and rec.resumed == [victim] and rec.errors == []
    assert queued_counts(r)[victim] == 1


def test_a_title_that_never_queues_is_given_up_after_max_attempts(fx, world, r):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = parse_request({"kind": "search", "id_or_query": "SUBB", "backfill": 100})
    assert subs.add(sub)
    victim = expected(fx, "search", "SUBB")[5]
    broken = failing_for({victim}, real_submit(ctx, actors.start))
    for n in range(1, MAX_ATTEMPTS + 1):
        rec = run_check(ctx, subs, sub, broken)
        assert victim not in rec.queued and victim in rec.errors[0]
        assert (victim in subs.pending(sub.id)) == (n < MAX_ATTEMPTS)
    assert rec.skipped[victim].startswith(f"gave up after {MAX_ATTEMPTS} failed attempts: could not queue")
    assert run_check(ctx, subs, sub, broken).resumed == []


def test_unfollowing_forgets_pending_titles(fx, world, r):
    ctx, actors = world
    subs = Subscriptions(r)
    sub = follow(r, backfill=1000)
    victim = expected(fx, "search", "SUBA")[0]
    with pytest.raises(SystemExit):
        run_check(ctx, subs, sub, killed_at(victim, real_submit(ctx, actors.start)))
    assert subs.status(sub.id)["pending"] == 1
    assert subs.remove(sub.id)
    assert not r.exists(f"nassav:sub:{sub.id}:pending")
