import asyncio
import threading
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


def test_a_slot_released_from_another_thread_wakes_the_waiter():
    """Starlette runs a plain background function in a worker thread; the release must still reach the loop
    (in debug mode asyncio raises on a loop call from a foreign thread)."""
    async def scenario():
        admission = Admission(max_running=1, max_waiting=1)
        held = await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        errors = []

        def release():
            try:
                held.release()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(type(error).__name__)

        thread = threading.Thread(target=release)
        thread.start()
        await asyncio.to_thread(thread.join)
        second = await asyncio.wait_for(waiter, timeout=20)
        handed_over = (admission.running, admission.waiting)
        second.release()
        return errors, handed_over, admission.running

    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(asyncio.run(scenario(), debug=True)), daemon=True)
    runner.start()
    runner.join(timeout=60)  # a lost wake-up leaves the loop stuck: the test fails instead of hanging

    assert outcome == [([], (1, 0), 0)]


def test_freed_slots_go_to_waiters_in_arrival_order():
    async def scenario():
        admission = Admission(max_running=1, max_waiting=3)
        held = await admission.acquire()
        order = []

        async def wait(name):
            ticket = await admission.acquire()
            order.append(name)
            return ticket

        waiters = [asyncio.create_task(wait(name)) for name in ("first", "second", "third")]
        await asyncio.sleep(0)
        held.release()
        for waiter in waiters:
            (await waiter).release()
        assert order == ["first", "second", "third"]
        assert (admission.running, admission.waiting) == (0, 0)

    run(scenario())


def test_a_waiter_cancelled_as_it_is_handed_a_slot_passes_the_slot_on():
    async def scenario():
        admission = Admission(max_running=1, max_waiting=2)
        held = await admission.acquire()
        cancelled = asyncio.create_task(admission.acquire())
        patient = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        held.release()  # hands the slot to `cancelled`, which has not run yet
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        ticket = await asyncio.wait_for(patient, timeout=20)
        assert (admission.running, admission.waiting) == (1, 0)
        ticket.release()
        assert admission.running == 0

    run(scenario())


def test_release_async_frees_the_slot_on_the_loop():
    async def scenario():
        admission = Admission(max_running=1, max_waiting=0)
        ticket = await admission.acquire()
        await ticket.release_async()
        assert admission.running == 0

    run(scenario())
