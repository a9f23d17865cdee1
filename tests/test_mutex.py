"""The download mutex on a real Redis: owner tokens, renewal, expiry of a dead owner."""

import threading
import time

import pytest

from pipeline.mutex import Mutex


def test_second_holder_cannot_get_in_and_cannot_release(r):
    a = Mutex(r, ttl_ms=2000)
    b = Mutex(r, ttl_ms=2000)
    assert a.try_acquire()
    assert not b.try_acquire()
    b.slot = 0  # even pretending to own the slot does not let b release it
    assert b.release() is False
    assert a.holders() == {0: a.token}
    assert a.release() is True
    assert b.try_acquire()
    b.release()


def test_renewal_keeps_it_past_its_ttl(r):
    a = Mutex(r, ttl_ms=1000)
    a.acquire()
    try:
        time.sleep(2.5)  # 2.5 × the TTL
        assert not a.lost.is_set()
        assert Mutex(r, ttl_ms=1000).try_acquire() is False
        assert a.holders() == {0: a.token}
    finally:
        a.release()


def test_dead_owner_frees_within_ttl(r):
    dead = Mutex(r, ttl_ms=1000)
    assert dead.try_acquire()  # acquired without a renewal thread: like a process that died
    t0 = time.monotonic()
    waiter = Mutex(r, ttl_ms=1000)
    waiter.acquire(timeout_s=5, poll_s=0.05)
    waited = time.monotonic() - t0
    waiter.release()
    assert waited <= 1.0 + 0.3  # the TTL, plus polling slack


def test_lost_is_set_when_someone_else_took_the_slot(r):
    a = Mutex(r, ttl_ms=1000)
    a.acquire()
    r.set(a.key(0), "intruder", px=10_000)
    deadline = time.monotonic() + 3
    while not a.lost.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.lost.is_set()
    assert a.release() is False
    assert r.get(a.key(0)) == "intruder"


def test_limit_n_admits_n_at_once(r):
    holders = [Mutex(r, limit=2, ttl_ms=2000) for _ in range(3)]
    assert holders[0].try_acquire() and holders[1].try_acquire()
    assert not holders[2].try_acquire()
    assert {holders[0].slot, holders[1].slot} == {0, 1}
    holders[0].release()
    assert holders[2].try_acquire()
    for h in holders:
        h.release()


def test_acquire_times_out(r):
    a = Mutex(r, ttl_ms=5000)
    a.acquire()
    try:
        with pytest.raises(TimeoutError):
            Mutex(r, ttl_ms=5000).acquire(timeout_s=0.3, poll_s=0.05)
    finally:
        a.release()


def test_many_threads_never_overlap(r):
    inside = []
    overlap = []
    lock = threading.Lock()

    def work():
        m = Mutex(r, ttl_ms=2000)
        m.acquire(poll_s=0.01)
        with lock:
            inside.append(1)
            if len(inside) > 1:
                overlap.append(1)
        time.sleep(0.02)
        with lock:
            inside.pop()
        m.release()

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
