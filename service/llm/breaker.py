"""A circuit breaker for one LLM server of a pool: closed (it gets questions) → open, set aside with the reason, for a
cool-down → half-open once the cool-down has passed: a probe is due (its model list read again, llm/checks.py), and a
probe that passes closes it; a probe that fails, or a question that fails again soon after, opens it for twice as
long (up to MAX_BACKOFF times the cool-down), so a server that keeps failing costs less and less.

Written here rather than taken from pybreaker or aiobreaker: those wrap the call itself and decide on their own wall
clock, while the pool probes a set-aside server with a cheap model-list read instead of a user's question, keeps the
reason for /health, and is tested on a fake clock."""
from __future__ import annotations

import time
from collections.abc import Callable

MAX_BACKOFF = 8


class Breaker:
    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic, why: str | None = None):
        """`why`: set aside from the start, with a probe due at once (a pool's server whose model is not read yet)."""
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.why = why       # None: closed
        self.trips = 0       # set aside how many times since its last answer
        self._until = float("-inf")

    @property
    def closed(self) -> bool:
        return self.why is None

    @property
    def state(self) -> str:
        if self.why is None:
            return "closed"
        return "half_open" if self.due() else "open"

    def due(self) -> bool:
        """Set aside, and its cool-down passed: a probe may bring it back."""
        return self.why is not None and self.clock() >= self._until

    def retry_in(self) -> float | None:
        """Seconds until a probe is due (0 once it is); None when closed."""
        return None if self.why is None else max(0.0, self._until - self.clock())

    def trip(self, why: str) -> None:
        """Set aside for a cool-down that doubles with each trip since the server last answered."""
        self.trips += 1
        self.why = why
        self._until = self.clock() + self.cooldown_s * min(2 ** (self.trips - 1), MAX_BACKOFF)

    def rejoin(self) -> None:
        """A probe passed: closed again (the cool-down keeps growing until a question is answered)."""
        self.why = None

    def answered(self) -> None:
        self.trips = 0
