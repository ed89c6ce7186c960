import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from model_service.admission import Admission
from model_service.errors import Overloaded


def run(coroutine) -> None:
    """asyncio.run on a thread of its own: Playwright's sync API may hold this thread's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def test_admission_queues_up_to_the_limit_then_refuses():
    async def scenario():
        admission = Admission(max_running=1, max_waiting=1, retry_after=3)
        first = await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        assert (admission.running, admission.waiting) == (1, 1)

        with pytest.raises(Overloaded) as refused:
            await admission.acquire()
        assert refused.value.retry_after == 3

        first.release()
        second = await waiter
        assert (admission.running, admission.waiting) == (1, 0)
        second.release()
        second.release()  # idempotent
        assert admission.running == 0

    run(scenario())


def test_a_cancelled_waiter_leaves_the_queue():
    async def scenario():
        admission = Admission(max_running=1, max_waiting=2)
        held = await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (admission.running, admission.waiting) == (1, 0)
        held.release()

    run(scenario())
