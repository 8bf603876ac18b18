"""The LLM servers the gate asks (OLLAMA_HOST or OPENAI_BASE_URL, comma-separated), each with LLM_CONCURRENCY slots of
its own and its own answer time (server.py), and one queue of waiting questions in front of them all, served in turn
by consumer (turns.py). A question takes a free slot at once (of the server that answers fastest, when several are
free), else it waits for the first slot any server frees: so it goes to the server that can answer it soonest, and a
newcomer is told "busy" at once when no slot can be expected in time for its budget.

A server that fails a question (refused, a 5xx that is not "busy", a time-out of a call that had the whole
LLM_TIMEOUT) is set aside for a cool-down and probed back (breaker.py); the gate retries the question on another server
within the request's budget. A call that has less (its request spent the rest waiting, or on a server that failed it)
starts only on a server whose mean answer time, with a tenth to spare, is within what is left, and its time-out is the
request's budget running out, not the server's fault. With one server nothing is set aside: there is nowhere else to
go, and the next question is its probe, as it always was.

A pool serves one model (one_model.py): a server whose model list says it serves another, or lacks the model, is kept
out with that reason, in /health and the log, until a probe finds it serving the pool's model (or every reachable
server serves the same new one: the pool adopts it). A server of a pool takes no question before its model list was
read."""
from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.llm.base import LLMBackend, LLMError, busy
from service.llm.breaker import Breaker
from service.llm.one_model import OneModel
from service.llm.server import Call, Server
from service.llm.turns import Turns

log = logging.getLogger("moviegenre")

MARGIN = 1.1  # a question waits only for an answer expected with a tenth of its time to spare within the budget
SERVER_FAULTS = ("unreachable", "failed", "timed_out")  # what sets a server of a pool aside
UNCHECKED = "its model list was not read yet"


@dataclass(eq=False)
class Waiter:
    consumer: str
    tried: frozenset[Server]
    deadline: float | None  # when its request's budget runs out (None: it has none)
    future: asyncio.Future

    def left(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now


class LLMPool:
    """Used on the gate's event loop only, except load(), which other threads read."""

    def __init__(self, backends: list[LLMBackend], slots: int, timeout_s: float, cooldown_s: float,
                 probe_timeout_s: float, clock: Callable[[], float] = time.monotonic,
                 adopted: Callable[[str, str], None] = lambda old, new: None):
        """`timeout_s`: LLM_TIMEOUT, what a call may take at most (and an answer's time until one was measured);
        `clock`: the breakers' (a test's fake clock); calls are timed on the monotonic clock; `adopted(old, new)`:
        the pool serves model `new` from now on, an upgrade on every server (one_model.py)."""
        self.pooled = len(backends) > 1
        unchecked = UNCHECKED if self.pooled else None
        self.servers = [Server(backend, slots, timeout_s, Breaker(cooldown_s, clock, unchecked))
                        for backend in backends]
        self.slots = slots
        self.timeout_s = timeout_s
        self.probe_timeout_s = probe_timeout_s
        self.one_model = OneModel(self._set_aside, adopted)
        self.turns: Turns[Waiter] = Turns()
        self._checks: dict[Server, asyncio.Task] = {}

    async def take(self, consumer: str, remaining: float | None, limit: float, tried: frozenset[Server]) -> Call:
        """A slot of the server that can answer soonest, of those not `tried`; LLMError "busy" when none can be
        expected within `remaining` (None: wait however long), "unreachable" when every server is set aside."""
        self._start_due_checks()
        now = time.monotonic()
        server = self._soonest_free(tried, remaining)
        if server is not None:
            return self._start(server, remaining, now)
        if not self._hope(tried):
            raise self.none_left()
        expected = self._answer_expected_in(consumer, now, tried, remaining)
        if expected == math.inf:
            raise busy(self._too_slow(tried, remaining))
        if remaining is not None and expected is not None and MARGIN * expected > remaining:
            raise busy(self._why_busy(remaining))
        waiter = Waiter(consumer, tried, None if remaining is None else now + remaining,
                        asyncio.get_running_loop().create_future())
        self.turns.push(waiter, front=bool(tried))
        try:
            async with asyncio.timeout(remaining):
                return await waiter.future
        except TimeoutError:
            self._give_back(waiter)
            raise busy(f"no slot of {self._slots_text()} came free within {limit:.3g} s") from None
        except BaseException:
            self._give_back(waiter)
            raise
        finally:
            self.turns.remove(waiter)

    def _give_back(self, waiter: Waiter) -> None:
        """A slot handed to a question whose wait was cut off (its time-out or its cancellation may come in the very
        loop turn the slot was handed in): the server's again, the call never ran."""
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.release(future.result(), None, counted=False)

    def release(self, call: Call, failure: LLMError | None, counted: bool = True) -> None:
        """The slot back; a server of a pool that failed is set aside. `counted` False: the call never ran."""
        server = call.server
        if not counted:
            server.calls.discard(call)
        else:
            server.finish(call, time.monotonic(), failure.outcome if failure is not None else "answered")
            if failure is None:
                server.breaker.answered()
            elif self.pooled and failure.outcome in SERVER_FAULTS and (failure.outcome != "timed_out" or call.whole):
                self._set_aside(server, str(failure))  # a call cut short by its request's budget: not the server's
        self._dispatch()

    def may_retry(self, failure: LLMError, tried: frozenset[Server]) -> bool:
        """Whether a question that failed on the servers `tried` may go to another: the failure was a server's (or
        it said it is busy) and another server is in the pool or may be back after its probe."""
        return self.pooled and failure.outcome in SERVER_FAULTS + ("busy",) and self._hope(tried)

    def none_left(self) -> LLMError:
        aside = "; ".join(f"{s.address}: {s.breaker.why} (probed again in {s.breaker.retry_in():.0f} s)"
                          for s in self.servers if not s.breaker.closed)
        return LLMError(f"every LLM server is set aside: {aside}", "unreachable")

    async def check_all(self) -> bool:
        """Every server's model list read (the health probe); whether any of them answered."""
        await asyncio.gather(*(self._checking(server) for server in self.servers))
        return any(server.reachable for server in self.servers)

    def load(self) -> dict:
        """The pool as it stands, for /health and /metrics (read from other threads: counts only)."""
        servers = [server.load() for server in self.servers]
        usable = [s["answer_s"] for s in servers if not s["set_aside"]] or [s["answer_s"] for s in servers]
        return {"in_flight": sum(s["in_flight"] for s in servers), "waiting": self.turns.count,
                "concurrency": self.slots, "answer_s": round(sum(usable) / len(usable), 3),
                "model": self.one_model.reference, "servers": servers}

    # --- which server, and when

    def _usable(self, tried: Iterable[Server] = ()) -> list[Server]:
        return [s for s in self.servers if s.breaker.closed and s not in tried]

    def _soonest_free(self, tried: frozenset[Server], remaining: float | None) -> Server | None:
        free = [s for s in self._usable(tried) if s.free() > 0 and self._fits(s, remaining)]
        return min(free, key=lambda s: s.answer_s) if free else None

    def _whole(self, remaining: float | None) -> bool:
        """Whether a call given `remaining` s (None: no budget) has the whole LLM_TIMEOUT, give or take the tenth kept
        to spare (a request's budget is LLM_TIMEOUT, and a little of it is spent before its call starts)."""
        return remaining is None or MARGIN * remaining >= self.timeout_s

    def _fits(self, server: Server, remaining: float | None) -> bool:
        """Whether a question with `remaining` s of its budget may start on `server`: it has the whole LLM_TIMEOUT
        (a fresh request on a server that timed out lately is how it shows it is back), or the server's mean answer
        time, with a tenth to spare, is within what is left."""
        return self._whole(remaining) or MARGIN * server.answer_s <= remaining

    def _start(self, server: Server, remaining: float | None, now: float) -> Call:
        bound_s = self.timeout_s if remaining is None else min(self.timeout_s, remaining)
        return server.start(now, bound_s, self._whole(remaining))

    def _hope(self, tried: frozenset[Server]) -> bool:
        """Whether a server not `tried` is usable, or being probed, or due for a probe."""
        return any(s.breaker.closed or s.breaker.due() or s in self._checks for s in self.servers if s not in tried)

    def _answer_expected_in(self, consumer: str, now: float, tried: frozenset[Server],
                            remaining: float | None) -> float | None:
        """When a newcomer can expect its answer, each call taking its server's mean answer time: the calls in flight
        finish in turn (a free slot at once), then the questions that take their turn before it (turns.py) each take
        the slot that frees first, then its own call. (Little's law, right for many short requests, is wrong for a
        few long ones: four calls that just started free no slot for a whole answer time, not a quarter of it.)
        Only the slots it may start on when they free count (`_fits`: infinity when none may). None while no server
        is usable yet (being probed): it waits for them, within its budget."""
        usable = self._usable(tried)
        if not usable:
            return None
        slots = [(free_in, s.answer_s) for s in usable for free_in in s.free_in(now)
                 if self._fits(s, None if remaining is None else remaining - free_in)]
        if not slots:
            return math.inf
        heapq.heapify(slots)
        for _ in range(self.turns.ahead_of(consumer)):
            free_in, answer_s = heapq.heappop(slots)
            heapq.heappush(slots, (free_in + answer_s, answer_s))
        free_in, answer_s = slots[0]
        return free_in + answer_s

    def _why_busy(self, remaining: float) -> str:
        usable = self._usable()
        answer_s = sum(s.answer_s for s in usable) / len(usable)
        return (f"{sum(s.in_flight for s in usable)} of {self._slots_text()} answering and {self.turns.count} "
                f"waiting, about {answer_s:.1f} s an answer: none to expect within {remaining:.1f} s")

    def _too_slow(self, tried: frozenset[Server], remaining: float) -> str:
        fastest = min(s.answer_s for s in self._usable(tried))
        return (f"the servers not asked yet answer in about {fastest:.1f} s at best, and {remaining:.1f} s of the "
                "request's budget are left")

    def _slots_text(self) -> str:
        usable = self._usable() or self.servers
        return f"its {self.slots} slots" if len(self.servers) == 1 else \
            f"the {self.slots * len(usable)} slots of {len(usable)} servers"

    def _dispatch(self) -> None:
        """Free slots to the waiting questions, in turn; those no server is left for fail."""
        now = time.monotonic()
        while (waiter := self.turns.take(lambda w: not w.future.done() and self._soonest_free(w.tried, w.left(now)))
               ) is not None:
            left = waiter.left(now)
            waiter.future.set_result(self._start(self._soonest_free(waiter.tried, left), left, now))
        for waiter in self.turns.waiters():
            if not waiter.future.done() and not self._hope(waiter.tried):
                waiter.future.set_exception(self.none_left())
            elif not waiter.future.done() and self._too_late(waiter, now):
                waiter.future.set_exception(busy(self._too_slow(waiter.tried, waiter.left(now))))

    def _too_late(self, waiter: Waiter, now: float) -> bool:
        """Whether a slot is free for the waiter but no server it may ask fits what is left of its budget."""
        free = [s for s in self._usable(waiter.tried) if s.free() > 0]
        return bool(free) and not any(self._fits(s, waiter.left(now)) for s in free)

    # --- setting aside and probing back

    def _set_aside(self, server: Server, why: str) -> None:
        server.breaker.trip(why)
        log.warning("LLM server %s set aside for %.0f s: %s", server.address, server.breaker.retry_in(), why)

    def _start_due_checks(self) -> None:
        for server in self.servers:
            if server.breaker.due():
                self._checking(server)

    def _checking(self, server: Server) -> asyncio.Task:
        if server not in self._checks:
            self._checks[server] = asyncio.get_running_loop().create_task(self._check(server))
        return self._checks[server]

    async def _check(self, server: Server) -> None:
        """Read what the server serves (one_model.py): a server of a pool that answers and serves the pool's model
        comes back once its cool-down has passed; one that serves another model is set aside, saying so."""
        read = False
        try:
            model = await asyncio.wait_for(server.backend.served_model(), self.probe_timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever a server's odd answer makes a client raise
            server.reachable = False
            if self.pooled and not server.breaker.closed:
                self._set_aside(server, f"its model list did not answer: {_why(exc, self.probe_timeout_s)}")
        else:
            server.reachable, server.model, read = True, model, True
        finally:
            del self._checks[server]
            if self.pooled:
                self.one_model.checked(server if read else None, self.servers, self._checks)
            self._dispatch()


def _why(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:.3g} s"
    return str(exc) if isinstance(exc, LLMError) else type(exc).__name__
