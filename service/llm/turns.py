"""Questions waiting for the LLM, by consumer (a named API key, else a client address), served in turn: when a slot
comes free, the next consumer in the rotation gets it, whatever the size of the batch another one sent. A batch of 64
from one consumer so waits behind its own questions, not in front of everyone else's."""
from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Waiting(Protocol):
    consumer: str


W = TypeVar("W", bound=Waiting)


class Turns(Generic[W]):
    """One event loop uses it. Each consumer's questions wait in arrival order; consumers take turns."""

    def __init__(self):
        self._queues: OrderedDict[str, deque[W]] = OrderedDict()  # in turn order: the next to be served first
        self.count = 0  # questions waiting (read by other threads: /health, /metrics)

    def waiters(self) -> list[W]:
        return [waiter for queue in self._queues.values() for waiter in queue]

    def push(self, waiter: W, front: bool = False) -> None:
        """`front`: a question coming back from a failed server keeps its consumer's first place."""
        queue = self._queues.setdefault(waiter.consumer, deque())
        queue.appendleft(waiter) if front else queue.append(waiter)
        self.count += 1

    def remove(self, waiter: W) -> None:
        queue = self._queues.get(waiter.consumer)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self.count -= 1
            if not queue:
                del self._queues[waiter.consumer]

    def take(self, accepts: Callable[[W], bool]) -> W | None:
        """The first question, in turn order, that `accepts` (a slot it may use is free); its consumer's turn then
        goes to the back of the rotation."""
        for consumer, queue in self._queues.items():
            for waiter in queue:
                if accepts(waiter):
                    queue.remove(waiter)
                    self.count -= 1
                    if queue:
                        self._queues.move_to_end(consumer)
                    else:
                        del self._queues[consumer]
                    return waiter
        return None

    def ahead_of(self, consumer: str) -> int:
        """How many questions a newcomer of `consumer` waits behind: its consumer's own, and of every other
        consumer as many as take a turn before its own comes (one more than its own waiting)."""
        own = len(self._queues.get(consumer, ()))
        return own + sum(min(len(queue), own + 1) for other, queue in self._queues.items() if other != consumer)
