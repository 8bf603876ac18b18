"""The LLM servers the gate asks (OLLAMA_HOST or OPENAI_BASE_URL, comma-separated), each with LLM_CONCURRENCY slots of
its own and its own answer time (server.py), and one queue of waiting questions in front of them all, served in turn
by consumer (turns.py). A question takes a free slot at once (of the server that answers fastest, when several are
free), else it waits for the first slot any server frees: so it goes to the server that can answer it soonest, and a
newcomer is told "busy" at once when no slot can be expected in time for its budget (what a question can expect of
the servers, and the words of its "busy": expectation.py).

A server that fails a question (refused, a 5xx that is not "busy", a time-out of a call that had the whole LLM_TIMEOUT)
is set aside for a cool-down and probed back, its model list read (breaker.py, checks.py); the gate retries the question
on another server within the request's budget. A call that has less (its request spent the rest waiting, or on a server
that failed it) starts only on a server whose mean answer time, with a tenth to spare, is within what is left, and its
time-out is the request's budget running out, not the server's fault. With one server nothing is set aside: there is
nowhere else to go, and the next question is its probe, as it always was.

A pool serves one model (one_model.py): a server whose model list says it serves another, or lacks the model, is kept
out with that reason, in /health and the log, until a probe finds it serving the pool's model (or every reachable
server serves the same new one: the pool adopts it). A server of a pool takes no question before its model list was
read."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.llm.base import LLMBackend, LLMError, busy
from service.llm.breaker import Breaker
from service.llm.checks import ModelChecks, set_aside
from service.llm.expectation import Expectation
from service.llm.one_model import OneModel
from service.llm.server import Call, Server
from service.llm.turns import Turns

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
        self.one_model = OneModel(set_aside, adopted)
        self.checks = ModelChecks(self.servers, self.pooled, probe_timeout_s, self.one_model, self._dispatch)
        self.turns: Turns[Waiter] = Turns()
        self.expect = Expectation(self.servers, slots, timeout_s, self.turns)

    async def take(self, consumer: str, remaining: float | None, limit: float, tried: frozenset[Server]) -> Call:
        """A slot of the server that can answer soonest, of those not `tried`; LLMError "busy" when none can be
        expected within `remaining` (None: wait however long), "unreachable" when every server is set aside."""
        self.checks.start_due()
        now = time.monotonic()
        server = self.expect.soonest_free(tried, remaining)
        if server is not None:
            return self._start(server, remaining, now)
        if not self._hope(tried):
            raise self.none_left()
        why = self.expect.why_not_wait(consumer, now, tried, remaining)
        if why is not None:
            raise busy(why)
        waiter = Waiter(consumer, tried, None if remaining is None else now + remaining,
                        asyncio.get_running_loop().create_future())
        self.turns.push(waiter, front=bool(tried))
        try:
            async with asyncio.timeout(remaining):
                return await waiter.future
        except TimeoutError:
            self._give_back(waiter)
            raise busy(f"no slot of {self.expect.slots_text()} came free within {limit:.3g} s") from None
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
                set_aside(server, str(failure))  # a call cut short by its request's budget: not the server's
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
        return await self.checks.all()

    def load(self) -> dict:
        """The pool as it stands, for /health and /metrics (read from other threads: counts only)."""
        servers = [server.load() for server in self.servers]
        usable = [s["answer_s"] for s in servers if not s["set_aside"]] or [s["answer_s"] for s in servers]
        return {"in_flight": sum(s["in_flight"] for s in servers), "waiting": self.turns.count,
                "concurrency": self.slots, "answer_s": round(sum(usable) / len(usable), 3),
                "model": self.one_model.reference, "servers": servers}

    # --- which server, and when (what to expect of them: expectation.py)

    def _start(self, server: Server, remaining: float | None, now: float) -> Call:
        bound_s = self.timeout_s if remaining is None else min(self.timeout_s, remaining)
        return server.start(now, bound_s, self.expect.whole(remaining))

    def _hope(self, tried: frozenset[Server]) -> bool:
        """Whether a server not `tried` is usable, or being probed, or due for a probe."""
        return any(s.breaker.closed or s.breaker.due() or self.checks.under_way(s)
                   for s in self.servers if s not in tried)

    def _dispatch(self) -> None:
        """Free slots to the waiting questions, in turn; those no server is left for fail."""
        now = time.monotonic()
        expect = self.expect
        while (waiter := self.turns.take(lambda w: not w.future.done() and expect.soonest_free(w.tried, w.left(now)))
               ) is not None:
            left = waiter.left(now)
            waiter.future.set_result(self._start(expect.soonest_free(waiter.tried, left), left, now))
        for waiter in self.turns.waiters():
            if not waiter.future.done() and not self._hope(waiter.tried):
                waiter.future.set_exception(self.none_left())
            elif not waiter.future.done() and expect.too_late(waiter.tried, waiter.left(now)):
                waiter.future.set_exception(busy(expect.too_slow(waiter.tried, waiter.left(now))))
