"""A fixed number of slots, and a queue in arrival order in front of them that knows how long a newcomer can expect
to wait: by Little's law, the requests ahead of it times the mean time a request holds a slot, over the slots.

The CPU admission of the API uses it (api/admission.py: at most MAX_QUEUE_WAIT, once the queue is longer than a fixed
number of clients would make it), measuring what a slot costs from what its slots really took. (The LLM gate keeps
slots on each of several servers and a queue served in turn by consumer: llm/pool.py.)"""
from __future__ import annotations

import asyncio

SMOOTHING = 0.05  # weight of each new measurement in the mean (about the last 20 count)


class WaitQueue:
    """`slots` holders at once; the rest wait in arrival order. One event loop uses it (asyncio primitives)."""

    def __init__(self, slots: int, prior_s: float, smoothing: float = SMOOTHING):
        self.slots = slots
        self.in_flight = self.waiting = 0
        self.slot_s = prior_s  # the mean time a holder keeps its slot, measured
        self.smoothing = smoothing
        self._free = asyncio.Semaphore(slots)

    def has_free_slot(self) -> bool:
        return self.in_flight < self.slots and not self.waiting

    def expected_wait(self) -> float:
        """How long a newcomer can expect to wait for a slot, from the queue ahead of it."""
        if self.has_free_slot():
            return 0.0
        return (self.waiting + 1) * self.slot_s / self.slots

    async def enter(self, timeout: float | None) -> bool:
        """True once a slot is taken; False when none came within `timeout` (None: wait as long as it takes)."""
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._free.acquire()
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return True

    def leave(self, held_s: float) -> None:
        self.in_flight -= 1
        self.slot_s += self.smoothing * (held_s - self.slot_s)
        self._free.release()
