"""Per-site pacing shared through Redis: requests from several workers keep the interval."""

import threading
import time

import redis

from pipeline.http import RedisPacer


def test_pacing_is_shared_across_clients(r, redis_url):
    interval = 0.1
    fired: list[float] = []
    lock = threading.Lock()

    def worker():
        # One client and pacer per "process", as separate workers would have.
        client = redis.Redis.from_url(redis_url)
        pacer = RedisPacer(client)
        for _ in range(3):
            pacer.wait("jable", interval)
            with lock:
                fired.append(time.monotonic())
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fired) == 12
    # Slots are handed out 100 ms apart whoever asks, so the 12th request cannot go before
    # 11 intervals have passed (unshared pacers would finish four times sooner). Late
    # wake-ups only make it later, so this holds on a loaded machine too.
    assert max(fired) - start >= interval * 11 * 0.99, max(fired) - start


def test_other_sites_are_not_held_up(r, redis_url):
    pacer = RedisPacer(redis.Redis.from_url(redis_url))
    pacer.wait("missav", 5.0)
    t0 = time.monotonic()
    pacer.wait("jable", 5.0)  # a different site: no wait
    assert time.monotonic() - t0 < 0.5
