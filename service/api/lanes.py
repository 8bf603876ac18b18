"""A lane: threads of its own, one a slot, behind a queue in arrival order that knows how long a newcomer can expect
to wait (service/queueing.py). Classification's CPU work runs on one lane and the lookups' wait on IMDb and TMDb on
another (admission.py): neither waits behind the other, nor on the thread pool that runs FastAPI's plain `def`
routes and dependencies, and the probes run on the event loop itself."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from service.api.errors import Overloaded
from service.queueing import WaitQueue


class Lane:
    """`slots` threads, one a slot; `refusal` is raised for a request that found no slot within its patience."""

    def __init__(self, slots: int, prior_s: float, name: str, refusal: type[Overloaded] = Overloaded,
                 clock=time.monotonic):
        self.queue = WaitQueue(slots, prior_s)
        self.name, self.refusal, self.clock = name, refusal, clock
        self.served = 0  # requests that held a slot
        self._threads: ThreadPoolExecutor | None = None  # made on first use, let go by close()

    @asynccontextmanager
    async def held(self, patience: float | None):
        """A slot for the block; the time it is held is what the queue's estimate learns from."""
        if not await self.queue.enter(patience):
            raise self.refusal
        started = self.clock()
        try:
            yield
        finally:
            self.queue.leave(self.clock() - started)
            self.served += 1

    async def call(self, work, *args):
        """`work(*args)` on one of the lane's threads (the caller holds a slot): few threads touch the heap, so
        little is kept in glibc's per-thread arenas after a burst."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.queue.slots, thread_name_prefix=self.name)
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    async def run(self, patience: float | None, work, *args):
        """`work(*args)` on the lane's threads, once a slot came within `patience` seconds."""
        async with self.held(patience):
            return await self.call(work, *args)

    def close(self) -> None:
        """Let the threads go (made again if the app serves again: a lifespan may be entered twice)."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False)
