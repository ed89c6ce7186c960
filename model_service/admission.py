"""Back-pressure: at most `max_running` requests generate, at most `max_waiting` wait; the rest get 429.

Waiting in model_service (rather than piling requests into the engine) keeps latency bounded
and tells clients when to come back.
"""
from __future__ import annotations

import asyncio

from model_service.errors import Overloaded


class Ticket:
    """A held running slot; `release` is idempotent so every exit path may call it."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission._release()


class Admission:
    def __init__(self, *, max_running: int, max_waiting: int, retry_after: int = 1):
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.running = 0
        self.waiting = 0
        self._slot_freed = asyncio.Event()

    async def acquire(self) -> Ticket:
        """Wait for a running slot; raise Overloaded at once when the queue is full."""
        if self.running < self.max_running and self.waiting == 0:
            self.running += 1
            return Ticket(self)
        if self.waiting >= self.max_waiting:
            raise Overloaded(f"{self.waiting} requests are already waiting; try again shortly",
                             retry_after=self.retry_after)
        self.waiting += 1
        try:
            while self.running >= self.max_running:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            self.running += 1
        finally:
            self.waiting -= 1
        return Ticket(self)

    def _release(self) -> None:
        self.running -= 1
        self._slot_freed.set()
