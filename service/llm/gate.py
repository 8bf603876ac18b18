"""The LLM as the service may use it: a pool of servers (pool.py), at most LLM_CONCURRENCY calls in flight on each
(sized to its parallel slots: Ollama's OLLAMA_NUM_PARALLEL, llama.cpp's --parallel), one queue in front of them,
served in turn by consumer (turns.py) and bounded by the wait it can expect from the servers' own answer times, every
call a coroutine on one event loop of its own (loop.py).

A request brings a budget (LLM_TIMEOUT): a question that cannot expect its answer within it — the queue ahead is
too long for the servers' pace, or no slot came in time, or the server itself says it is busy — fails at once as
"busy", and the vote answers. A question a server of a pool failed goes to another within the same budget. Without a
budget (a file run, an evaluation) a question waits its turn however long, and each call is bounded by LLM_TIMEOUT
alone. A cached answer takes no place in the queue."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.genres import Vocabulary
from service.llm.base import LLMBackend, LLMError, parse_genres, timed_out
from service.llm.cache import AnswerCache
from service.llm.loop import BackgroundLoop
from service.llm.pool import LLMPool
from service.llm.probe import ReachabilityProbe
from service.llm.server import Call

log = logging.getLogger("moviegenre")

PROBE_TIMEOUT_S = 5.0
LOCAL = "local"  # the consumer of questions asked without one (a file run, an evaluation, the CLI)


@dataclass(frozen=True)
class Question:
    messages: list[dict[str, str]]
    schema: dict            # constrains the answer to `vocabulary`'s labels
    vocabulary: Vocabulary  # the labels the answer may name


Answer = list[str] | LLMError


class LLMGate:
    def __init__(self, backends: list[LLMBackend], cache: AnswerCache, concurrency: int, timeout_s: float,
                 cooldown_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        """`concurrency`: each server's slots; `cooldown_s`: how long a failed server of a pool is set aside at
        first; `clock`: the breakers' (a test's fake clock)."""
        self.backends = backends
        self.cache = cache
        self.name = backends[0].name
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.model_change: str | None = None  # what the pool's last change of model did (one_model.py)
        self.pool = LLMPool(backends, concurrency, timeout_s, cooldown_s, PROBE_TIMEOUT_S, clock, self._adopted)
        self._loop = BackgroundLoop(f"llm-{self.name}")
        # run on the loop itself, so a hung server's probe is cancelled there, not left running
        self._probe = ReachabilityProbe(self.check)

    async def ask(self, questions: list[Question], budget_s: float | None, consumer: str = LOCAL) -> list[Answer]:
        """From any event loop: every question asked at once (within the gate's limits, `consumer`'s questions
        taking their turn with other consumers'); an answer or an LLMError each, in order, within `budget_s` (None:
        as long as the queue takes)."""
        try:
            return await self._loop.wait(self._ask_all(questions, budget_s, consumer))
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # the request itself was cancelled
            return [LLMError("the LLM stage was shut down", "unreachable")] * len(questions)

    def ask_blocking(self, questions: list[Question], budget_s: float | None = None,
                     consumer: str = LOCAL) -> list[Answer]:
        """`ask` for a thread that is no event loop's (a file run, an evaluation, the CLI)."""
        return self._loop.run(self._ask_all(questions, budget_s, consumer))

    async def _ask_all(self, questions: list[Question], budget_s: float | None, consumer: str) -> list[Answer]:
        deadline = None if budget_s is None else time.monotonic() + budget_s
        limit = self.timeout_s if budget_s is None else min(self.timeout_s, budget_s)
        answers = await asyncio.gather(*(self._ask(q, consumer, deadline, limit) for q in questions),
                                       return_exceptions=True)
        return [_as_answer(answer) for answer in answers]

    async def _ask(self, question: Question, consumer: str, deadline: float | None, limit: float) -> list[str]:
        """`limit`: what the caller was promised an answer within (the message of a time-out says it). A question
        a server of a pool failed goes to another while the budget lasts."""
        key = self.cache.key(question.messages, question.schema)
        cached = self.cache.cached(key)
        if cached is not None:
            return cached
        tried, failures = frozenset(), []
        model = self.pool.one_model.reference  # an answer of a model the pool stopped serving meanwhile is not kept
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                call = await self.pool.take(consumer, remaining, limit, tried)
            except LLMError as error:
                raise _after(failures, error) from None
            try:
                answer = await self._call(call, question, limit)
            except LLMError as error:
                self.pool.release(call, error)
                tried, failures = tried | {call.server}, failures + [error]
                if self.pool.may_retry(error, tried) and (deadline is None or deadline > time.monotonic()):
                    continue
                raise _after(failures[:-1], error) from None
            except Exception:
                self.pool.release(call, LLMError("the LLM answer could not be read"))
                raise
            except BaseException:  # cancelled: the call never finished
                self.pool.release(call, None, counted=False)
                raise
            self.pool.release(call, None)
            if self.pool.one_model.reference == model:
                self.cache.keep(key, answer)
            return answer

    async def _call(self, call: Call, question: Question, limit: float) -> list[str]:
        try:
            async with asyncio.timeout(call.bound_s):
                text = await call.server.backend.complete(question.messages, question.schema)
        except TimeoutError as exc:
            raise self._of(call, timed_out(limit)) from exc
        except LLMError as error:
            raise self._of(call, error) from None
        return parse_genres(text, question.vocabulary)

    def _of(self, call: Call, error: LLMError) -> LLMError:
        """In a pool, a server's failure names the server."""
        if not self.pool.pooled:
            return error
        return LLMError(f"{error} ({call.server.address})", error.outcome)

    def load(self) -> dict:
        """The pool as it stands: calls in flight and waiting, the mean answer times measured, the model it serves
        and its last change, each server."""
        return {**self.pool.load(), "model_change": self.model_change}

    def _adopted(self, old: str, new: str) -> None:
        """Every reachable server serves `new` instead of `old` (an upgrade): the answers cached were `old`'s."""
        dropped = self.cache.forget()
        self.model_change = (f"the pool serves {new!r} since every reachable server listed it instead of {old!r}: "
                             f"the {dropped} answers cached of {old!r} were dropped; the calibration in use is kept by "
                             f"model name and was measured on {old!r}")
        log.warning("LLM %s", self.model_change)

    def check(self) -> bool:
        """Every server's model list read now (what the health probe does in the background, and what brings a
        server set aside back once its cool-down has passed); whether any answered."""
        return self._loop.run(self.pool.check_all())

    def reachable(self) -> bool:
        """Whether any server answered the last background probe (see probe.py)."""
        return self._probe.reachable()

    def stats(self) -> dict:
        return self.cache.stats()

    def describe(self) -> str:
        return self.backends[0].describe()

    def identity(self) -> dict[str, str]:
        return self.cache.identity

    @property
    def running(self) -> bool:
        """Whether its event loop's thread runs (started on the first question, stopped by close())."""
        return self._loop.running

    def close(self) -> None:
        self._loop.close(self._close_all())

    async def _close_all(self) -> None:
        for backend in self.backends:
            await backend.close()
        self.cache.close()


def _after(failures: list[LLMError], error: LLMError) -> LLMError:
    """The error a question ends with, after the servers that failed it before."""
    if not failures:
        return error
    return LLMError(f"{'; '.join(map(str, failures))}; then {error}", error.outcome)


def _as_answer(answer) -> Answer:
    if isinstance(answer, (list, LLMError)):
        return answer
    # whatever an outside server makes a client raise is a fallback, never a 500
    return LLMError(f"the LLM answer could not be read: {type(answer).__name__}")
