"""What a question of the LLM pool (pool.py) can expect of its servers: which server it may start on with what is
left of its budget, when its answer can be expected if it waits, and the words of a "busy" that says why none can be.
It reads the servers and the waiting questions; it changes nothing."""
from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from service.llm.server import Server
from service.llm.turns import Turns

MARGIN = 1.1  # a question waits only for an answer expected with a tenth of its time to spare within the budget


class Expectation:
    def __init__(self, servers: list[Server], slots: int, timeout_s: float, turns: Turns):
        """`servers`, `turns`: the pool's own (read as they stand at each call); `timeout_s`: LLM_TIMEOUT."""
        self.servers = servers
        self.slots = slots
        self.timeout_s = timeout_s
        self.turns = turns

    def usable(self, tried: Iterable[Server] = ()) -> list[Server]:
        return [s for s in self.servers if s.breaker.closed and s not in tried]

    def soonest_free(self, tried: frozenset[Server], remaining: float | None) -> Server | None:
        free = [s for s in self.usable(tried) if s.free() > 0 and self.fits(s, remaining)]
        return min(free, key=lambda s: s.answer_s) if free else None

    def whole(self, remaining: float | None) -> bool:
        """Whether a call given `remaining` s (None: no budget) has the whole LLM_TIMEOUT, give or take the tenth kept
        to spare (a request's budget is LLM_TIMEOUT, and a little of it is spent before its call starts)."""
        return remaining is None or MARGIN * remaining >= self.timeout_s

    def fits(self, server: Server, remaining: float | None) -> bool:
        """Whether a question with `remaining` s of its budget may start on `server`: it has the whole LLM_TIMEOUT
        (a fresh request on a server that timed out lately is how it shows it is back), or the server's mean answer
        time, with a tenth to spare, is within what is left."""
        return self.whole(remaining) or MARGIN * server.answer_s <= remaining

    def too_late(self, tried: frozenset[Server], left: float | None) -> bool:
        """Whether a slot is free for a waiting question but no server it may ask fits what is left of its budget."""
        free = [s for s in self.usable(tried) if s.free() > 0]
        return bool(free) and not any(self.fits(s, left) for s in free)

    def why_not_wait(self, consumer: str, now: float, tried: frozenset[Server], remaining: float | None) -> str | None:
        """Why a newcomer that found no slot free for it may not wait ("busy"); None: it may, its answer can be
        expected in time (or it has no budget, or no server is usable yet)."""
        expected = self._answer_in(consumer, now, tried, remaining)
        if expected == math.inf:
            return self.too_slow(tried, remaining)
        if remaining is not None and expected is not None and MARGIN * expected > remaining:
            return self._why_busy(remaining)
        return None

    def _answer_in(self, consumer: str, now: float, tried: frozenset[Server], remaining: float | None) -> float | None:
        """When a newcomer can expect its answer, each call taking its server's mean answer time: the calls in flight
        finish in turn (a free slot at once), then the questions that take their turn before it (turns.py) each take
        the slot that frees first, then its own call. (Little's law, right for many short requests, is wrong for a
        few long ones: four calls that just started free no slot for a whole answer time, not a quarter of it.)
        Only the slots it may start on when they free count (`fits`: infinity when none may). None while no server
        is usable yet (being probed): it waits for them, within its budget."""
        usable = self.usable(tried)
        if not usable:
            return None
        slots = [(free_in, s.answer_s) for s in usable for free_in in s.free_in(now)
                 if self.fits(s, None if remaining is None else remaining - free_in)]
        if not slots:
            return math.inf
        heapq.heapify(slots)
        for _ in range(self.turns.ahead_of(consumer)):
            free_in, answer_s = heapq.heappop(slots)
            heapq.heappush(slots, (free_in + answer_s, answer_s))
        free_in, answer_s = slots[0]
        return free_in + answer_s

    def _why_busy(self, remaining: float) -> str:
        usable = self.usable()
        answer_s = sum(s.answer_s for s in usable) / len(usable)
        return (f"{sum(s.in_flight for s in usable)} of {self.slots_text()} answering and {self.turns.count} "
                f"waiting, about {answer_s:.1f} s an answer: none to expect within {remaining:.1f} s")

    def too_slow(self, tried: frozenset[Server], remaining: float) -> str:
        fastest = min(s.answer_s for s in self.usable(tried))
        return (f"the servers not asked yet answer in about {fastest:.1f} s at best, and {remaining:.1f} s of the "
                "request's budget are left")

    def slots_text(self) -> str:
        usable = self.usable() or self.servers
        return f"its {self.slots} slots" if len(self.servers) == 1 else \
            f"the {self.slots * len(usable)} slots of {len(usable)} servers"
