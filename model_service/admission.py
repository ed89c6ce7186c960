"""Back-pressure: at most `max_running` requests generate, at most `max_waiting` wait; the rest get 429.

Waiting in model_service (rather than piling requests into the engine) keeps latency bounded
and tells clients when to come back. A freed slot passes straight to the longest waiter.
"""
from __future__ import annotations

import asyncio
from collections import deque

from model_service.errors import Overloaded


class Ticket:
    """A held running slot; `release` is idempotent so every exit path may call it."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self._held = True

    def release(self) -> None:
        """Free the slot; safe from any thread (the bookkeeping itself runs on the event loop)."""
        if self._held:
            self._held = False
            self._admission._release()

    async def release_async(self) -> None:
        """`release` as a coroutine, for Starlette's BackgroundTask: given a plain function, it would run
        it in a worker thread, a thread hop per request."""
        self.release()


class Admission:
    def __init__(self, *, max_running: int, max_waiting: int, retry_after: int = 1):
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.running = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> Ticket:
        """Wait for a running slot, first come first served; raise Overloaded at once when the queue is full."""
        self._loop = asyncio.get_running_loop()
        if self.running < self.max_running and not self._waiters:
            self.running += 1
            return Ticket(self)
        if len(self._waiters) >= self.max_waiting:
            raise Overloaded(f"{len(self._waiters)} requests are already waiting; try again shortly",
                             retry_after=self.retry_after)
        slot = self._loop.create_future()
        self._waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.cancelled():
                if slot in self._waiters:
                    self._waiters.remove(slot)
            else:  # handed a slot in the same moment it was cancelled: pass it on
                self._release()
            raise
        return Ticket(self)

    def _release(self) -> None:
        if not self._on_loop():
            self._loop.call_soon_threadsafe(self._release)
            return
        while self._waiters and self.running <= self.max_running:
            slot = self._waiters.popleft()
            if not slot.done():  # skip a waiter cancelled but not yet woken to leave
                slot.set_result(None)  # the slot changes hands: `running` stays
                return
        self.running -= 1

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:  # no loop runs in this thread
            return False
