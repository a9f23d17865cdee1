"""gateway/tasks.py: the back-off the relay and the projection share, and stopping a task."""

from __future__ import annotations

import asyncio
import logging

from gateway.tasks import Backoff, cancel_and_wait


def test_backoff_doubles_up_to_its_cap_logs_each_failure_and_resets(caplog):
    log = logging.getLogger("nassav.test-backoff")
    retry = Backoff(log, first_s=0.001, max_s=0.005)

    async def fail(times: int) -> list[float]:
        slept = []
        for i in range(times):
            slept.append(retry.next_s)
            await retry.wait("thing: redis unavailable (%s); retrying", f"error {i}")
        return slept

    with caplog.at_level(logging.WARNING, logger=log.name):
        assert asyncio.run(fail(5)) == [0.001, 0.002, 0.004, 0.005, 0.005]
    assert [r.getMessage() for r in caplog.records] == [
        f"thing: redis unavailable (error {i}); retrying" for i in range(5)]
    retry.reset()
    assert retry.next_s == 0.001


def test_cancel_and_wait_stops_a_loop_that_backs_off():
    async def go() -> bool:
        retry = Backoff(logging.getLogger("nassav.test-backoff"), first_s=60)

        async def loop() -> None:
            while True:
                await retry.wait("down")  # a long back-off must not keep stop() waiting

        task = asyncio.create_task(loop())
        await asyncio.sleep(0.01)
        await asyncio.wait_for(cancel_and_wait(task), 2)
        await cancel_and_wait(None)
        return task.cancelled()
    assert asyncio.run(go())
