"""cancel_and_wait stops a background task even when a cancel is swallowed on the way."""

from __future__ import annotations

import asyncio

from gateway.tasks import cancel_and_wait


def test_a_swallowed_cancel_is_sent_again():
    async def main() -> int:
        swallowed = 0

        async def loop_that_eats_one_cancel() -> None:
            nonlocal swallowed
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if swallowed:
                        raise
                    swallowed += 1  # as a retry loop does with a cancel turned into an error
                    asyncio.current_task().uncancel()

        task = asyncio.create_task(loop_that_eats_one_cancel())
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_and_wait(task, recancel_after_s=0.05), 5)
        assert task.done() and task.cancelled()
        return swallowed

    assert asyncio.run(main()) == 1


def test_nothing_to_cancel():
    asyncio.run(cancel_and_wait(None))
