"""The LLM as the service may use it: at most LLM_CONCURRENCY calls in flight (sized to the server's parallel
slots: Ollama's OLLAMA_NUM_PARALLEL, llama.cpp's --parallel), a queue in front of them bounded by the wait it can
expect from the server's own answer times, every call a coroutine on one event loop of its own (loop.py).

A request brings a budget (LLM_TIMEOUT): a question that cannot expect its answer within it — the queue ahead is
too long for the server's pace, or no slot came in time, or the server itself says it is busy — fails at once as
"busy", and the vote answers. Without a budget (a file run, an evaluation) a question waits its turn however long,
and each call is bounded by LLM_TIMEOUT alone. A cached answer takes no place in the queue."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from service.genres import Vocabulary
from service.llm.base import LLMError, busy, timed_out
from service.llm.cache import CachedBackend
from service.llm.loop import BackgroundLoop
from service.llm.probe import ReachabilityProbe
from service.queueing import WaitQueue

# An answer takes LLM_TIMEOUT until one was measured (nobody waits on a guess), then the measured mean, each new
# answer weighing 0.3 (answers are few and slow: the mean must follow the server within a few of them).
SMOOTHING = 0.3
MARGIN = 1.1  # a question waits only for an answer expected with a tenth of its time to spare within the budget
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Question:
    messages: list[dict[str, str]]
    schema: dict            # constrains the answer to `vocabulary`'s labels
    vocabulary: Vocabulary  # the labels the answer may name


Answer = list[str] | LLMError


class LLMGate:
    def __init__(self, backend: CachedBackend, concurrency: int, timeout_s: float):
        self.backend = backend
        self.name = backend.name
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._loop = BackgroundLoop(f"llm-{backend.name}")
        self._queue = WaitQueue(concurrency, timeout_s, SMOOTHING)
        self._started: dict[int, float] = {}  # the calls in flight: when each started
        # bounded on the loop itself, so a hung server's probe is cancelled there, not left running
        self._probe = ReachabilityProbe(
            lambda: self._loop.run(asyncio.wait_for(backend.inner.reachable(), PROBE_TIMEOUT_S)))

    async def ask(self, questions: list[Question], budget_s: float | None) -> list[Answer]:
        """From any event loop: every question asked at once (within the gate's limits); an answer or an LLMError
        each, in order, within `budget_s` (None: as long as the queue takes)."""
        try:
            return await self._loop.wait(self._ask_all(questions, budget_s))
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # the request itself was cancelled
            return [LLMError("the LLM stage was shut down", "unreachable")] * len(questions)

    def ask_blocking(self, questions: list[Question], budget_s: float | None = None) -> list[Answer]:
        """`ask` for a thread that is no event loop's (a file run, an evaluation, the CLI)."""
        return self._loop.run(self._ask_all(questions, budget_s))

    async def _ask_all(self, questions: list[Question], budget_s: float | None) -> list[Answer]:
        deadline = None if budget_s is None else time.monotonic() + budget_s
        limit = self.timeout_s if budget_s is None else min(self.timeout_s, budget_s)
        answers = await asyncio.gather(*(self._ask(q, deadline, limit) for q in questions), return_exceptions=True)
        return [_as_answer(answer) for answer in answers]

    async def _ask(self, question: Question, deadline: float | None, limit: float) -> list[str]:
        """`limit`: what the caller was promised an answer within (the message of a time-out says it)."""
        key = self.backend.key(question.messages, question.schema)
        cached = self.backend.cached(key)
        if cached is not None:
            return cached
        now = time.monotonic()
        remaining = None if deadline is None else deadline - now
        if remaining is not None and not self._queue.has_free_slot() \
                and MARGIN * self._answer_expected_in(now) > remaining:
            raise busy(self._why_busy(remaining))
        if not await self._queue.enter(remaining):
            raise busy(f"no slot of {self.concurrency} came free within {limit:.3g} s")
        started, call = time.monotonic(), object()
        self._started[id(call)] = started
        try:
            async with asyncio.timeout(self.timeout_s if deadline is None else min(self.timeout_s, deadline - started)):
                return await self.backend.ask(key, question.messages, question.schema, question.vocabulary)
        except TimeoutError as exc:
            raise timed_out(limit) from exc
        finally:
            del self._started[id(call)]
            self._queue.leave(time.monotonic() - started)

    def _answer_expected_in(self, now: float) -> float:
        """When a newcomer can expect its answer, each call taking the mean answer time: the calls in flight finish
        in turn (a free slot at once), then the queue ahead takes whole rounds of the slots before its own call.
        (Little's law, right for many short requests, is wrong for a few long ones: four calls that just started
        free no slot for a whole answer time, not a quarter of it.)"""
        answer_s = self._queue.slot_s
        free_in = sorted(max(0.0, answer_s - (now - start)) for start in self._started.values())
        free_in += [0.0] * (self.concurrency - len(free_in))
        rounds, slot = divmod(self._queue.waiting, self.concurrency)
        return free_in[slot] + rounds * answer_s + answer_s

    def _why_busy(self, remaining: float) -> str:
        queue = self._queue
        return (f"{queue.in_flight} of its {queue.slots} slots answering and {queue.waiting} waiting, about "
                f"{queue.slot_s:.1f} s an answer: none to expect within {remaining:.1f} s")

    def load(self) -> dict:
        """The queue as it stands: calls in flight and waiting, the mean answer time measured."""
        return {"in_flight": self._queue.in_flight, "waiting": self._queue.waiting,
                "concurrency": self.concurrency, "answer_s": round(self._queue.slot_s, 3)}

    def reachable(self) -> bool:
        """The last background probe's answer (see probe.py)."""
        return self._probe.reachable()

    def stats(self) -> dict:
        return self.backend.stats()

    def describe(self) -> str:
        return self.backend.describe()

    def identity(self) -> dict[str, str]:
        return self.backend.identity()

    @property
    def running(self) -> bool:
        """Whether its event loop's thread runs (started on the first question, stopped by close())."""
        return self._loop.running

    def close(self) -> None:
        self._loop.close(self.backend.close())


def _as_answer(answer) -> Answer:
    if isinstance(answer, (list, LLMError)):
        return answer
    # whatever an outside server makes a client raise is a fallback, never a 500
    return LLMError(f"the LLM answer could not be read: {type(answer).__name__}")
