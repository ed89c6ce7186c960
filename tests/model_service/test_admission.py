import asyncio

import pytest

from model_service.admission import Admission
from model_service.errors import Overloaded


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

    asyncio.run(scenario())


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

    asyncio.run(scenario())
